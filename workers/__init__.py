"""Workers: the middle of the data path (`in` stream -> live index and `feed` stream).

`enricher` consumes the `in` stream in a consumer group and publishes enriched posts
(its pure core is `rules.enrich`, the lifetimes `rules.expiry`); `scheduler` is the arq
worker that runs deferred and periodic jobs (expiry, catch-up, opening changes).
"""
