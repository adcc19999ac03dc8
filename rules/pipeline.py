"""Whether the enrichers keep up (pure): a post waiting too long in the `in` stream.

A post the web accepted (202) reaches passers-by only through an enricher. One that is
stopped, deadlocked or stuck on a call reads nothing and exits never, so nothing
restarts it, while every page said "live" and /readyz "ready" (a cold attacker's
SIGSTOP: five posts accepted, none shown for a minute). Two kinds of waiting tell it:
an entry no enricher has read yet, and one read but held unacknowledged longer than
another enricher would take to claim it (a failing entry is claimed again and again,
so it never looks held that long).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["stalled_since_ms"]


def stalled_since_ms(now_ms: int, waiting_ms: Iterable[int | None], stall_ms: int) -> int | None:
    """When the oldest waiting post was appended (ms), if it has waited longer than
    `stall_ms` by `now_ms` (both the server's clock, as stream ids); else None."""
    oldest = min((ms for ms in waiting_ms if ms is not None), default=None)
    if oldest is None or now_ms - oldest <= stall_ms:
        return None
    return oldest
