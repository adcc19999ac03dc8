"""What is live around a place now, over every region the place touches, nearest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from feed.index import Subscriber
from rules import cursor as cursors
from storage.live import LiveIndex

__all__ = ["AreaSnapshot", "snapshot_area"]

T = TypeVar("T")  # what the subscriber stands for (a socket, or nothing for a page)

# Redis measures GEOSEARCH distances on a slightly different sphere: ask a bit wider,
# then keep exactly what our own check accepts.
_SEARCH_SLACK = 1.001


@dataclass(frozen=True, slots=True)
class AreaSnapshot:
    posts: list[bytes]  # encoded public posts, nearest first
    last_ids: dict[str, str]  # per region: the feed entry the snapshot is consistent with


async def snapshot_area(lives: dict[str, LiveIndex], sub: Subscriber[T], *, now_ts: float,
                        limit: int, upto: dict[str, str] | None = None) -> AreaSnapshot:
    """Live posts `sub` wants; with `upto`, only those published at or before those entries
    (later ones are on their way live)."""
    found: list[tuple[float, bytes]] = []
    last_ids: dict[str, str] = {}
    for region, live in lives.items():
        snap = await live.snapshot(sub.lat, sub.lon, sub.radius_m * _SEARCH_SLACK + 1, limit)
        last_ids[region] = snap.last_id
        bound = cursors.key(upto[region]) if upto is not None else None
        for post in snap.posts:
            if post.expires_ts <= now_ts or not sub.wants(post.kind, post.lat, post.lon,
                                                          post.local):
                continue
            if bound is not None and cursors.key(post.feed_id) > bound:
                continue
            found.append((post.distance_m, post.json))
    found.sort(key=lambda item: item[0])
    return AreaSnapshot(posts=[json for _, json in found[:limit]], last_ids=last_ids)
