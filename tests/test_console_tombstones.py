"""feed.console's tombstones: a tombstone names no shop, so one of no watched post goes
only to the console sockets whose snapshot is being read (after it), never to live ones.

In process, real Redis, real hub and reader: `Consoles.on_entry` is called as the hub
calls it, while one socket's snapshot is still being read.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from redis.asyncio import Redis

from feed.console import Consoles
from feed.hub import Hub
from feed.presence import PresenceBoard
from feed.reader import Readers
from rules.clock import SystemClock
from runtime.settings import Settings
from schemas.feed import FeedEntry
from schemas.shops import ShopRecord
from services.holds import Holds
from storage.ratelimit import RateLimiter
from tests.helpers import HubSink


def _shop(shop_id: str, lat: float) -> ShopRecord:
    return ShopRecord(id=shop_id, name=shop_id, category="bakery", lat=lat, lon=-0.5735,
                      token_hash="x", created_at=datetime.now(UTC))


def _types(sink: HubSink) -> list[tuple[str, str | None]]:
    out = []
    for frame in sink.frames:
        body = json.loads(frame[4:] if frame[1] == 126 else frame[2:])
        out.append((body["type"], body.get("id")))
    return out


async def test_tombstone_of_no_watched_post_goes_to_sockets_reading_their_snapshot(
        redis: Redis, settings: Settings) -> None:
    hub = Hub(settings)
    clock = SystemClock()
    readers = Readers(redis, settings, hub, clock)
    consoles = Consoles(redis, settings, hub, readers, PresenceBoard(redis, settings), clock,
                        Holds(redis, settings, clock, settings.moderation_policy(),
                              RateLimiter(redis, settings.secret)))
    try:
        live_sink = HubSink()
        await consoles.open(live_sink, _shop("live-shop", 44.8370))
        reading_sink = HubSink()
        opening = asyncio.create_task(consoles.open(reading_sink, _shop("new-shop", 44.8380)))
        # One turn of the loop: `open` registers the socket before its first await.
        await asyncio.sleep(0)
        [reading] = consoles.watches["new-shop"].sockets
        assert reading.held is not None  # its snapshot is being read

        consoles.on_entry("main", FeedEntry(type="withdrawn", id="p-unknown"))
        await opening

        # After its snapshot, never before it; not to the live socket of another shop.
        assert _types(reading_sink)[-1] == ("withdrawn", "p-unknown")
        assert _types(reading_sink).index(("posts", None)) < len(reading_sink.frames) - 1
        assert ("withdrawn", "p-unknown") not in _types(live_sink)
        # Once no socket reads a snapshot, such a tombstone goes nowhere.
        consoles.on_entry("main", FeedEntry(type="expired", id="p-other"))
        assert ("expired", "p-other") not in _types(reading_sink)
        assert ("expired", "p-other") not in _types(live_sink)
    finally:
        await readers.stop_all()
