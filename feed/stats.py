"""Presence and reach leave each gateway once a second: numbers only.

Presence, the sockets watching per ~110 m cell (no position leaves the process),
is published on each region's Pub/Sub channel and never written to a key: it is
in no Redis key, AOF or snapshot, only in the memory of the processes that
answer a shop's console (feed.presence). Reach, the first deliveries of each post
(feed.hub: edits are not counted again), is added to the post's counters in Redis, so
it sums over every gateway; a shop reads it through `reach_of`, floored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets

import msgspec
from redis.asyncio import Redis

from feed.hub import Hub
from rules.reach import shown_reach
from runtime import metrics
from schemas.feed import Reach
from schemas.presence import PresenceReport
from storage import keys
from storage.redis_conn import REDIS_DOWN, hmget_many, publish

__all__ = ["StatsPublisher", "reach_of"]

log = logging.getLogger("streetfeed.stats")

_encode = msgspec.json.Encoder().encode


def gateway_id() -> str:
    return f"{os.getpid()}-{secrets.token_hex(3)}"


class StatsPublisher:
    def __init__(self, redis: Redis, hub: Hub, interval_s: float, reach_ttl_s: int) -> None:
        self.redis = redis
        self.hub = hub
        self.interval_s = interval_s
        self.reach_ttl_s = reach_ttl_s
        self.id = gateway_id()
        # Regions this gateway last told it had watchers in: told once when it has none.
        self._watched: set[str] = set()

    async def publish(self) -> None:
        metrics.SOCKETS_OPEN.set(len(self.hub.index))
        reach, self.hub.reach = self.hub.reach, {}
        try:
            await self._publish_presence()
            if reach:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for (region, post_id), (phones, screens) in reach.items():
                        key = keys.reach(region, post_id)
                        if phones:
                            pipe.hincrby(key, "phone", phones)
                        if screens:
                            pipe.hincrby(key, "screen", screens)
                        pipe.expire(key, self.reach_ttl_s)
                    await pipe.execute()
        except REDIS_DOWN:
            # Counts made while Redis was away are kept for the next flush.
            for region_post, (phones, screens) in reach.items():
                counts = self.hub.reach.setdefault(region_post, [0, 0])
                counts[0] += phones
                counts[1] += screens
            raise

    async def _publish_presence(self) -> None:
        # Every count, every time: listeners keep only the last report of each gateway and
        # drop one gone silent, and one that starts listening has it all within a second.
        # The same counts under every region this process reads: a shop's console counts in
        # its own region, which then sees watchers just across a border too.
        watched = set(self.hub.positions) if self.hub.presence else set()
        report = _encode(PresenceReport(gateway=self.id, cells=list(self.hub.presence.items())))
        nobody = _encode(PresenceReport(gateway=self.id))
        for region in sorted(watched | self._watched):
            await publish(self.redis, keys.presence_channel(region),
                          report if region in watched else nobody)
            # Once told, a region without watchers hears no more from us until it has some.
            if region not in watched:
                self._watched.discard(region)
            else:
                self._watched.add(region)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            try:
                await self.publish()
            except REDIS_DOWN as exc:
                # Not a restart: counts are kept for the next flush (publish does that).
                log.warning("stats: Redis unavailable (%s)", exc)
        # Leaving: listeners drop our counts now rather than after our silence.
        nobody = _encode(PresenceReport(gateway=self.id))
        with contextlib.suppress(*REDIS_DOWN):
            for region in sorted(self._watched):
                await publish(self.redis, keys.presence_channel(region), nobody)


async def reach_of(redis: Redis, region: str, post_ids: list[str]) -> dict[str, Reach]:
    """Each post's reach as a shop may be told it (rules.reach: "fewer than 5" under 5)."""
    # One round trip for all of them (a console reads every live post's, a few times after
    # each post), not one per post.
    counts = await hmget_many(redis, [keys.reach(region, p) for p in post_ids],
                              "phone", "screen")
    return {post_id: shown_reach(int(phones or 0), int(screens or 0))
            for post_id, (phones, screens) in zip(post_ids, counts, strict=True)}
