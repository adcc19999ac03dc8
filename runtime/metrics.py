"""Every Prometheus metric, defined once (prometheus-client, default registry).

Counters are incremented where things happen; gauges that mirror state are set
by the web process's stats loop. Labels never carry positions or tokens.

Several processes of one run (`streetfeed up|web --workers N`: N web processes on
one port, and for `up` the parent running the enricher and scheduler) share their
metrics through prometheus-client's multiprocess mode: the parent makes a fresh
directory and sets PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client (streetfeed.cli), every process keeps its values in files there,
and whichever worker answers /metrics sums them (`exposition`). Without the
variable (one process, tests' in-process servers) the default registry answers.
Each gauge says how its processes' values combine (`multiprocess_mode`).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["DEAD_LETTERS", "DELIVERIES", "DROPPED_SLOW", "DURABILITY_DEGRADED", "ENRICHER_LAG",
           "ENRICHER_PENDING", "POSTS_ACCEPTED", "POSTS_DROPPED", "POSTS_PUBLISHED",
           "POSTS_REJECTED", "RATE_LIMITED", "REDIS_RECONNECTS", "SOCKETS_OPEN", "TASK_RESTARTS",
           "exposition", "process_dead"]

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Each web process sets its own count: the sum over live processes (a dead one's is dropped).
SOCKETS_OPEN = Gauge("streetfeed_sockets_open", "WebSocket subscribers connected",
                     multiprocess_mode="livesum")
UPLOADS_IN_PROGRESS = Gauge("streetfeed_uploads_in_progress",
                            "Photo uploads held by web processes (read, queued, processed)",
                            multiprocess_mode="livesum")
POSTS_ACCEPTED = Counter("streetfeed_posts_accepted_total", "Posts answered 202")
POSTS_REJECTED = Counter("streetfeed_posts_rejected_total", "Requests answered 4xx, by code",
                         ["code"])
POSTS_PUBLISHED = Counter("streetfeed_posts_published_total", "Posts made live by enrichers")
POSTS_DROPPED = Counter("streetfeed_posts_dropped_total", "Raw posts not published, by reason",
                        ["reason"])
DEAD_LETTERS = Counter("streetfeed_dead_letters_total", "Entries moved to the dead-letter stream")
# Alerts for followed shops (workers.pusher).
PUSH_SENT = Counter("streetfeed_push_sent_total", "Alerts a push service accepted (201/202)")
PUSH_FAILED = Counter("streetfeed_push_failed_total",
                      "Alert sends that failed, by reason (retry: 429, 5xx or no answer, "
                      "sent again later; refused: another 4xx or a redirect, dropped; "
                      "gave_up: retries spent; endpoint_refused: no longer an allowed "
                      "endpoint)", ["reason"])
PUSH_DELETED = Counter("streetfeed_push_deleted_total",
                       "Subscriptions deleted because their push service said 404/410")
PUSH_DROPPED = Counter("streetfeed_push_dropped_total",
                       "Alerts not sent because their post ended or was withdrawn first")
# One value for the whole deployment, read from Redis by whichever process answers
# /metrics: the latest reading, not a sum.
ENRICHER_LAG = Gauge("streetfeed_enricher_lag", "In-stream entries not yet read by enrichers",
                     multiprocess_mode="mostrecent")
ENRICHER_PENDING = Gauge("streetfeed_enricher_pending",
                         "In-stream entries read, not acknowledged",
                         multiprocess_mode="mostrecent")
DELIVERIES = Counter("streetfeed_deliveries_total", "Frames written to sockets for feed entries")
DROPPED_SLOW = Counter("streetfeed_dropped_slow_sockets_total",
                       "Sockets closed because they fell behind")
REDIS_RECONNECTS = Counter("streetfeed_redis_reconnects_total",
                           "Redis outages met and retried, by component", ["component"])
RATE_LIMITED = Counter("streetfeed_rate_limited_total", "Requests refused with 429, by limit",
                       ["limit"])
TASK_RESTARTS = Counter("streetfeed_task_restarts_total",
                        "Long-running tasks and child processes restarted after they ended or "
                        "failed, by task", ["task"])


def exposition() -> bytes:
    """The /metrics page: every process of the run in multiprocess mode, else this one."""
    if os.environ.get(MULTIPROC_DIR_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def process_dead(pid: int) -> None:
    """A worker of this run exited: its live gauges (sockets_open) stop counting.
    Its counters stay in the sums, as counters must."""
    if os.environ.get(MULTIPROC_DIR_ENV):
        mark_process_dead(pid)
DURABILITY_DEGRADED = Counter(
    "streetfeed_durability_degraded_total",
    "Posts whose shard had no replica to acknowledge them (STREETFEED_DURABILITY replica or "
    "replica-preferred), by mode and outcome: refused (503 not_durable) or fsync (accepted on "
    "the master's AOF fsync)", ["mode", "outcome"])
