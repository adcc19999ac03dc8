"""Whether the enrichers keep up (pure): a post waiting too long in the `in` stream.

A post the web accepted (202) reaches passers-by only through an enricher. One that is
stopped, deadlocked or stuck on a call reads nothing and exits never, so nothing
restarts it, while every page said "live" and /readyz "ready" (a cold attacker's
SIGSTOP: five posts accepted, none shown for a minute). Stuck: a post has waited longer
than the limit, and no enricher has tried to read or claim for as long (a live one
tries at least every enricher_block_ms, failing posts or not). Since the later of the
two: posts stopped flowing when the first of them was left waiting, or when the
enrichers stopped, whichever came last (a post pending on a stopped enricher's consumer
dates from its last try, not from its append: a cold try saw "not live since" 12
minutes too early).
"""

from __future__ import annotations

__all__ = ["stalled_since_ms"]


def stalled_since_ms(now_ms: int, waiting_ms: int | None, tried_ms: int | None,
                     stall_ms: int) -> int | None:
    """Since when posts do not flow (ms), or None: `waiting_ms`, since when the oldest
    post has waited (None: none waits); `tried_ms`, an enricher's last try (None: none
    ever); all on the server's clock, as stream ids."""
    if waiting_ms is None or now_ms - waiting_ms <= stall_ms:
        return None
    if tried_ms is not None and now_ms - tried_ms <= stall_ms:
        return None  # one is at work: behind, or retrying a failing post
    return max(waiting_ms, tried_ms if tried_ms is not None else waiting_ms)
