"""Workers: the middle of the data path (`in` stream -> live index and `feed` stream).

`enricher` consumes the `in` stream in a consumer group and publishes enriched
posts (`enrich` is its pure core, `expiry` the default lifetimes); `scheduler`
is the arq worker that runs deferred and periodic jobs (expiry, catch-up).
"""
