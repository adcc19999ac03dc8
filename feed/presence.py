"""The console's audience: people watching around a shop, counted from memory only.

Gateways publish their watchers per presence cell on a region's Pub/Sub channel
once a second (feed.stats); a process answering `GET /api/v1/shops/{id}/stats`
listens to that region from the first console that asks, keeps the last report
of each gateway in memory, and drops a gateway silent for a few seconds. Nothing
of it is in Redis's keyspace, so nothing of it is in the AOF.

What a shop may learn is fixed here too (`audience`): counts around its own
registered position only, within radii of 250 m or more, and "fewer than 5"
rather than any number under 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from rules.errors import Unavailable
from rules.geo import CellGrid, haversine_m
from runtime.settings import Settings
from schemas.feed import WatchCount
from schemas.limits import AUDIENCE_COUNT_MIN, AUDIENCE_RADII_M, PRESENCE_CELL_DEG
from schemas.presence import PresenceReport
from storage import keys
from storage.redis_conn import pubsub_client, text

__all__ = ["PresenceBoard", "audience"]

log = logging.getLogger("streetfeed.presence")

_decode = msgspec.json.Decoder(PresenceReport).decode
# A region listened to just now: its counts are answered once every gateway had a turn to
# publish (one interval) and this much more for the message to arrive.
_FIRST_ROUND_GRACE_S = 0.3
# How long a console's request waits for a region to be listened to, before a 503.
_LISTEN_TIMEOUT_S = 5.0
# How often the listening loop looks at the regions asked for when no message comes.
_TURN_S = 0.25


def audience(counts: dict[int, int]) -> list[WatchCount]:
    """What a shop is told of the watchers counted within each of AUDIENCE_RADII_M: a count
    from AUDIENCE_COUNT_MIN up, else only that there are fewer (0 and 1 included: telling
    them apart would say whether someone is there)."""
    return [WatchCount(radius_m=r, count=counts[r]) if counts[r] >= AUDIENCE_COUNT_MIN
            else WatchCount(radius_m=r, count=None, fewer_than=AUDIENCE_COUNT_MIN)
            for r in AUDIENCE_RADII_M]


class PresenceBoard:
    """The last presence report of every gateway, per region listened to, in memory."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.interval_s = settings.presence_interval_s
        self.silence_s = settings.presence_silence_s
        self.idle_s = settings.presence_idle_s
        self.grid = CellGrid(PRESENCE_CELL_DEG)
        # region -> gateway -> (loop time received, cells); only for regions listened to.
        self._reports: dict[str, dict[str, tuple[float, list[tuple[int, int]]]]] = {}
        # region -> loop time a console last asked about it.
        self._asked: dict[str, float] = {}
        # region -> loop time the subscription was confirmed (set while it holds).
        self._since: dict[str, float] = {}
        self._changed = asyncio.Event()

    async def watchers(self, region: str, lat: float, lon: float,
                       radii: tuple[int, ...]) -> dict[int, int]:
        """Sockets watching within each radius of (lat, lon), over every live gateway."""
        loop = asyncio.get_running_loop()
        self._asked[region] = loop.time()
        if region not in self._since:
            self._changed.set()
        deadline = loop.time() + _LISTEN_TIMEOUT_S
        while True:
            since = self._since.get(region)
            ready_at = None if since is None else since + self.interval_s + _FIRST_ROUND_GRACE_S
            if ready_at is not None and loop.time() >= ready_at:
                break
            if loop.time() >= deadline:
                raise Unavailable("people watching cannot be counted now; retry shortly",
                                  code="presence_unavailable", retry_after=2)
            # The first request for a region waits one round of reports (about a second).
            await asyncio.sleep(min(_TURN_S, max(0.01, (ready_at or deadline) - loop.time())))
        now = loop.time()
        counts = dict.fromkeys(radii, 0)
        reports = self._reports.get(region, {})
        for gateway, (received, cells) in list(reports.items()):
            if now - received > self.silence_s:
                # A gateway gone silent (killed, cut off): its watchers are gone, and so is
                # its entry (a restarted process reports under a new id).
                del reports[gateway]
                continue
            for cell, n in cells:
                distance = haversine_m(lat, lon, *self.grid.centre_of(cell))
                for radius in radii:
                    if distance <= radius:
                        counts[radius] += n
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to the regions consoles ask about, until `stop`; any failure ends it (the
        caller restarts it under supervision), forgetting what it heard."""
        client = await pubsub_client(self.redis)
        pubsub = client.pubsub()
        channels: dict[str, str] = {}  # channel -> region
        try:
            while not stop.is_set():
                await self._follow_asked(pubsub, channels)
                if not channels:
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), _TURN_S)
                    continue
                message = await pubsub.get_message(timeout=_TURN_S)
                if message is not None:
                    self._take(message, channels)
        finally:
            self._since.clear()
            self._reports.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _follow_asked(self, pubsub: PubSub, channels: dict[str, str]) -> None:
        """Subscribe to regions asked about, unsubscribe from those no longer asked about."""
        now = asyncio.get_running_loop().time()
        for region, asked in list(self._asked.items()):
            channel = keys.presence_channel(region)
            if now - asked > self.idle_s:
                del self._asked[region]
                if channel in channels:
                    await pubsub.unsubscribe(channel)
                    del channels[channel]
                self._since.pop(region, None)
                self._reports.pop(region, None)
            elif channel not in channels:
                channels[channel] = region
                await pubsub.subscribe(channel)

    def _take(self, message: dict[str, Any], channels: dict[str, str]) -> None:
        region = channels.get(text(message["channel"]))
        if region is None:
            return  # a region let go meanwhile
        now = asyncio.get_running_loop().time()
        if message["type"] == "subscribe":
            self._since[region] = now
            self._reports[region] = {}
        elif message["type"] == "message":
            try:
                report = _decode(message["data"])
            except msgspec.DecodeError:
                log.warning("presence: undecodable report on %s", message["channel"])
                return
            reports = self._reports.setdefault(region, {})
            if report.cells:
                reports[report.gateway] = (now, report.cells)
            else:
                reports.pop(report.gateway, None)
