"""The console's audience: people watching around a shop, counted from memory only.

Gateways publish their watchers per presence cell on a region's Pub/Sub channel
once a second (feed.stats); a process answering `GET /api/v1/shops/{id}/stats`
listens to that region from the first console that asks, keeps the last report
of each gateway in memory, and drops a gateway silent for a few seconds. Nothing
of it is in Redis's keyspace, so nothing of it is in the AOF.

Console sockets (feed.console) `hold` their shop's region listened to while open and
are told (`on_change`) when its counts may have changed: a gateway's report differs
from its previous one, a gateway went silent, or the first round is complete. The
same connection carries shop writes (`follow_shop_changes`) while they want them.

What a shop may learn is fixed here too (`audience`): counts around its own
registered position only, within radii of 250 m or more, and "fewer than 5"
rather than any number under 5. A count looks only at the presence cells whose centre
is within the largest radius of the shop (rules.geo.cells_within, ~160 within 2 km),
each looked up in the region's reports summed per cell, whatever the number of cells
heard (issue 19: it walked every cell of every gateway's report).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from rules.errors import Unavailable
from rules.geo import CellGrid, cells_within
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
# Shop positions whose cells (rules.geo.cells_within) are kept: more than a process's
# consoles watch at once; ~160 cells each within 2 km.
_RINGS_KEPT = 1024


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
        # region -> cell -> watchers summed over those reports: made when a count needs it,
        # forgotten when a report changes.
        self._sums: dict[str, dict[int, int]] = {}
        # (lat, lon, radii) -> cells_within: the cells a shop's counts look at.
        self._rings: dict[tuple[float, float, tuple[int, ...]], list[list[int]]] = {}
        # region -> loop time a console last asked about it.
        self._asked: dict[str, float] = {}
        # region -> loop time the subscription was confirmed (set while it holds).
        self._since: dict[str, float] = {}
        self._changed = asyncio.Event()
        # Regions kept listened to by open console sockets, and who is told when the
        # counts of one of them change (feed.console), only when they do: reports come
        # whole every second whether or not anything moved.
        self._held: Counter[str] = Counter()
        self.on_change: Callable[[str], None] | None = None
        # Who hears shop writes (the consoles, the profile cache: services.profiles), by name.
        self._shop_followers: dict[str, Callable[[str | None], None]] = {}
        # Moves at every subscription to shop writes and at every loss of it (see
        # `shop_changes_heard`).
        self._shop_epoch = 0
        self._shop_heard = False

    async def watchers(self, region: str, lat: float, lon: float,
                       radii: tuple[int, ...]) -> dict[int, int]:
        """Sockets watching within each radius of (lat, lon), over every live gateway."""
        loop = asyncio.get_running_loop()
        self._asked[region] = loop.time()
        if region not in self._since:
            self._changed.set()
        deadline = loop.time() + _LISTEN_TIMEOUT_S
        while True:
            ready_at = self._ready_at(region)
            if ready_at is not None and loop.time() >= ready_at:
                break
            if loop.time() >= deadline:
                raise Unavailable("people watching cannot be counted now; retry shortly",
                                  code="presence_unavailable", retry_after=2)
            # The first request for a region waits one round of reports (about a second).
            await asyncio.sleep(min(_TURN_S, max(0.01, (ready_at or deadline) - loop.time())))
        counts = self.counts(region, lat, lon, radii)
        assert counts is not None  # ready, checked above
        return counts

    def _ready_at(self, region: str) -> float | None:
        since = self._since.get(region)
        return None if since is None else since + self.interval_s + _FIRST_ROUND_GRACE_S

    def counts(self, region: str, lat: float, lon: float,
               radii: tuple[int, ...]) -> dict[int, int] | None:
        """As `watchers`, at once: None until the region has been listened to for a round."""
        ready_at = self._ready_at(region)
        now = asyncio.get_running_loop().time()
        if ready_at is None or now < ready_at:
            return None
        self._drop_silent(region, now)
        # The few cells around the shop (cached by position), each looked up in the region's
        # sums: not every cell of every gateway with a distance each (~4.5 ms of the loop
        # at 10,000 sockets' worth of reports, per console update).
        ordered = tuple(sorted(radii))
        rings = self._rings.get((lat, lon, ordered))
        if rings is None:
            if len(self._rings) >= _RINGS_KEPT:
                self._rings.clear()  # positions of shops asked about lately: refilled at once
            rings = self._rings[lat, lon, ordered] = cells_within(self.grid, lat, lon, ordered)
        get = self._sums_of(region).get
        counts: dict[int, int] = {}
        running = 0
        for radius, ring in zip(ordered, rings, strict=True):
            running += sum(get(cell, 0) for cell in ring)
            counts[radius] = running
        return counts

    def _drop_silent(self, region: str, now: float) -> bool:
        """Forget the gateways of `region` silent for too long (killed, cut off: their
        watchers are gone; a restarted process reports under a new id); whether any was."""
        reports = self._reports.get(region)
        if not reports:
            return False
        silent = [g for g, (received, _c) in reports.items() if now - received > self.silence_s]
        for gateway in silent:
            del reports[gateway]
        if silent:
            self._sums.pop(region, None)
        return bool(silent)

    def _sums_of(self, region: str) -> dict[int, int]:
        """Watchers per cell over the region's live reports, made again only when a count
        needs it after a report changed (consoles' counts are folded to once a presence
        interval): shared by every shop of the region, and nothing when nobody counts.
        Kept up to date as each report came, they cost more than decoding it (0.36 µs a
        cell of every report)."""
        sums = self._sums.get(region)
        if sums is None:
            reports = [cells for _received, cells in self._reports.get(region, {}).values()]
            # The largest report copied in C, the others added to it (a gateway lists each
            # cell once: feed.stats publishes a dict's items).
            largest = max(reports, key=len, default=[])
            sums = dict(largest)
            for cells in reports:
                if cells is not largest:
                    get = sums.get
                    for cell, n in cells:
                        sums[cell] = get(cell, 0) + n
            self._sums[region] = sums
        return sums

    # --- Consoles' sockets (feed.console): held regions, changes told ------------------

    def hold(self, region: str) -> None:
        """Listen to `region` until as many `release` calls (an open console socket)."""
        self._held[region] += 1
        self._asked[region] = asyncio.get_running_loop().time()
        self._changed.set()

    def release(self, region: str) -> None:
        self._held[region] -= 1
        if self._held[region] <= 0:
            del self._held[region]  # then forgotten like a region no request asks about

    def follow_shop_changes(self, name: str,
                            on_change: Callable[[str | None], None] | None) -> None:
        """Call `on_change(shop_id)` for every shop write (storage.shops.announce_change), and
        `on_change(None)` once listening starts (again: writes may have been missed);
        None stops the follower `name`."""
        if on_change is None:
            self._shop_followers.pop(name, None)
        else:
            self._shop_followers[name] = on_change
        self._changed.set()

    def shop_changes_heard(self) -> int | None:
        """While every shop write is heard, a number that changes whenever writes may have
        been missed since (a new subscription, a lost one); None while they are not. What
        is kept only while no write is missed (services.profiles) is kept under it."""
        return self._shop_epoch if self._shop_heard else None

    def _notify(self, region: str) -> None:
        if self.on_change is not None and region in self._held:
            self.on_change(region)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to the regions consoles ask about, until `stop`; any failure ends it (the
        caller restarts it under supervision), forgetting what it heard."""
        client = await pubsub_client(self.redis)
        pubsub = client.pubsub()
        channels: dict[str, str] = {}  # channel -> region ("" for shop changes)
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
                now = asyncio.get_running_loop().time()
                for region in self._held:
                    if self._drop_silent(region, now):
                        self._notify(region)
        finally:
            self._shop_heard = False
            self._shop_epoch += 1
            self._since.clear()
            self._reports.clear()
            self._sums.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _follow_asked(self, pubsub: PubSub, channels: dict[str, str]) -> None:
        """Subscribe to regions asked about, unsubscribe from those no longer asked about."""
        now = asyncio.get_running_loop().time()
        for region in self._held:
            self._asked[region] = now
        for region, asked in list(self._asked.items()):
            channel = keys.presence_channel(region)
            if now - asked > self.idle_s:
                del self._asked[region]
                if channel in channels:
                    await pubsub.unsubscribe(channel)
                    del channels[channel]
                self._since.pop(region, None)
                self._reports.pop(region, None)
                self._sums.pop(region, None)
            elif channel not in channels:
                channels[channel] = region
                await pubsub.subscribe(channel)
        shop_channel = keys.shop_changes_channel()
        if self._shop_followers and shop_channel not in channels:
            channels[shop_channel] = ""
            await pubsub.subscribe(shop_channel)
        elif not self._shop_followers and shop_channel in channels:
            del channels[shop_channel]
            self._shop_heard = False
            self._shop_epoch += 1
            await pubsub.unsubscribe(shop_channel)

    def _take(self, message: dict[str, Any], channels: dict[str, str]) -> None:
        region = channels.get(text(message["channel"]))
        if region is None:
            return  # a region let go meanwhile
        if region == "":
            if message["type"] == "subscribe":
                # Heard from now on (again, after a reconnection: writes may have been missed).
                self._shop_heard = True
                self._shop_epoch += 1
            if message["type"] in ("subscribe", "message"):
                shop_id = None if message["type"] == "subscribe" else text(message["data"])
                for on_change in list(self._shop_followers.values()):
                    on_change(shop_id)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if message["type"] == "subscribe":
            self._since[region] = now
            self._reports[region] = {}
            # Counts are complete after one round of reports: consoles are told then.
            loop.call_later(self.interval_s + _FIRST_ROUND_GRACE_S, self._notify, region)
        elif message["type"] == "message":
            try:
                report = _decode(message["data"])
            except msgspec.DecodeError:
                log.warning("presence: undecodable report on %s", message["channel"])
                return
            reports = self._reports.setdefault(region, {})
            before = reports.get(report.gateway)
            if report.cells:
                reports[report.gateway] = (now, report.cells)
            else:
                reports.pop(report.gateway, None)
            if (before[1] if before else []) != report.cells:
                self._sums.pop(region, None)
                self._notify(region)
