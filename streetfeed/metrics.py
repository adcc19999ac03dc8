"""Every Prometheus metric, defined once (prometheus-client, default registry).

Counters are incremented where things happen; gauges that mirror state are set
by the web process's stats loop. Labels never carry positions or tokens.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SOCKETS_OPEN = Gauge("streetfeed_sockets_open", "WebSocket subscribers connected to this process")
POSTS_ACCEPTED = Counter("streetfeed_posts_accepted_total", "Posts answered 202")
POSTS_REJECTED = Counter("streetfeed_posts_rejected_total", "Requests answered 4xx, by code",
                         ["code"])
POSTS_PUBLISHED = Counter("streetfeed_posts_published_total", "Posts made live by enrichers")
POSTS_DROPPED = Counter("streetfeed_posts_dropped_total", "Raw posts not published, by reason",
                        ["reason"])
DEAD_LETTERS = Counter("streetfeed_dead_letters_total", "Entries moved to the dead-letter stream")
ENRICHER_LAG = Gauge("streetfeed_enricher_lag", "In-stream entries not yet read by enrichers")
ENRICHER_PENDING = Gauge("streetfeed_enricher_pending", "In-stream entries read, not acknowledged")
DELIVERIES = Counter("streetfeed_deliveries_total", "Frames written to sockets for feed entries")
DROPPED_SLOW = Counter("streetfeed_dropped_slow_sockets_total",
                       "Sockets closed because they fell behind")
REDIS_RECONNECTS = Counter("streetfeed_redis_reconnects_total",
                           "Redis outages met and retried, by component", ["component"])
RATE_LIMITED = Counter("streetfeed_rate_limited_total", "Requests refused with 429, by limit",
                       ["limit"])
DURABILITY_DEGRADED = Counter(
    "streetfeed_durability_degraded_total",
    "Posts whose shard had no replica to acknowledge them (STREETFEED_DURABILITY replica or "
    "replica-preferred), by mode and outcome: refused (503 not_durable) or fsync (accepted on "
    "the master's AOF fsync)", ["mode", "outcome"])
