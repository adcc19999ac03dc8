"""Whether the enrichers keep up (pure): a post waiting too long in the `in` stream.

A post the web accepted (202) reaches passers-by only through an enricher. One that is
stopped, deadlocked or stuck on a call reads nothing and exits never, so nothing
restarts it, while every page said "live" and /readyz "ready" (a cold attacker's
SIGSTOP: five posts accepted, none shown for a minute). Posts stopped flowing at the
later of two moments: when the oldest post still waiting was appended, and an enricher's
last beat (a live one beats before each read, at least every enricher_block_ms, failing
posts or not, so a post it is behind on or retrying is not a stall). Stuck once that is
longer ago than the limit. An old post still pending (read by an enricher stopped since,
or left by a killed one) dates from the enrichers' last beat, not from its append: a cold
try saw "not live since" 12 minutes too early. A post
pending on a stopped enricher counts from its append, not from its claim delay: a cold
try saw a 20 s stop told to nobody (25 s with the deployed delays).
"""

from __future__ import annotations

__all__ = ["stalled_since_ms"]


def stalled_since_ms(now_ms: int, waiting_ms: int | None, tried_ms: int | None,
                     stall_ms: int) -> int | None:
    """Since when posts do not flow (ms), if for longer than `stall_ms`; else None.
    `waiting_ms`: when the oldest post still waiting was appended (None: none waits);
    `tried_ms`: an enricher's last beat (None: none); all on the server's clock, as stream
    ids."""
    if waiting_ms is None:
        return None
    since = waiting_ms if tried_ms is None else max(waiting_ms, tried_ms)
    return since if now_ms - since > stall_ms else None
