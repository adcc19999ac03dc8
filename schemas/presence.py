"""What gateways tell each other about the people watching: counts, never positions.

Published on keys.presence_channel(region) (Pub/Sub: never stored), read by the
processes that answer the shop console (feed.presence). Tolerant, like every
format shared inside: a new field gets a default so old and new processes mix.
"""

from __future__ import annotations

import msgspec

__all__ = ["PresenceReport"]


class PresenceReport(msgspec.Struct, frozen=True, kw_only=True):
    """One gateway's watchers per presence cell (schemas.limits.PRESENCE_CELL_DEG, ~280 m), all of
    them, once per interval. Empty `cells`: it has nobody left (a gateway says so once, and
    when it stops), so listeners drop it at once rather than after its silence."""

    gateway: str
    # (cell number, sockets watching from it); in-shop screens are not counted.
    cells: list[tuple[int, int]] = []
