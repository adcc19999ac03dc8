"""Presence and reach: numbers the gateways share through Redis, once a second.

Each web process writes its watcher counts per small cell (opaque cell numbers
and counts; no position leaves the process) to its own short-lived hash, and
adds the deliveries it made per post to the post's reach. Readers sum over
every live gateway, so counts stay right when the sockets of one street are
spread over several processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time

from redis.asyncio import Redis

from feed.geo import CellGrid, haversine_m
from feed.hub import PRESENCE_CELL_DEG, Hub
from streetfeed import keys, metrics
from streetfeed.redis_conn import REDIS_DOWN

log = logging.getLogger("streetfeed.stats")

PRESENCE_TTL_S = 5
REACH_TTL_S = 3 * 24 * 3600


def gateway_id() -> str:
    return f"{os.getpid()}-{secrets.token_hex(3)}"


class StatsPublisher:
    def __init__(self, redis: Redis, hub: Hub, interval_s: float = 1.0) -> None:
        self.redis = redis
        self.hub = hub
        self.interval_s = interval_s
        self.id = gateway_id()
        self._published: set[str] = set()
        # hub.presence_changes when the counts were last written (None: write them).
        self._published_changes: int | None = None

    async def publish(self) -> None:
        metrics.SOCKETS_OPEN.set(len(self.hub.index))
        reach, self.hub.reach = self.hub.reach, {}
        changes = self.hub.presence_changes
        # The same counts under every region this process reads: a shop's console sums
        # its own region, which then sees watchers just across a border too.
        regions = set(self.hub.positions) | self._published
        # Thousands of cells at street scale: only rewritten when a socket came, went or
        # moved; otherwise their expiry is pushed back.
        rewrite = (changes != self._published_changes
                   or set(self.hub.positions) != self._published)
        cells = {str(c): n for c, n in self.hub.presence.items()} if rewrite else {}
        expiries: list[int] = []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for region in regions:
                    presence_key = keys.presence(region, self.id)
                    watched = bool(self.hub.presence) and region in self.hub.positions
                    if rewrite:
                        pipe.delete(presence_key)
                        if watched:
                            pipe.hset(presence_key, mapping=cells)
                    if watched:
                        expiries.append(len(pipe))
                        pipe.expire(presence_key, PRESENCE_TTL_S)
                        pipe.zadd(keys.gateways(region), {self.id: time.time()})
                for (region, post_id), (phones, screens) in reach.items():
                    key = keys.reach(region, post_id)
                    if phones:
                        pipe.hincrby(key, "phone", phones)
                    if screens:
                        pipe.hincrby(key, "screen", screens)
                    pipe.expire(key, REACH_TTL_S)
                results = await pipe.execute()
            self._published = set(self.hub.positions)
            # A hash gone meanwhile (Redis restarted empty, say) is written whole next time.
            kept = all(results[i] for i in expiries)
            self._published_changes = changes if kept else None
        except REDIS_DOWN:
            self._published_changes = None
            # Counts made while Redis was away are kept for the next flush.
            for key, (phones, screens) in reach.items():
                counts = self.hub.reach.setdefault(key, [0, 0])
                counts[0] += phones
                counts[1] += screens
            raise

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            try:
                await self.publish()
            except REDIS_DOWN as exc:
                # Not a restart: counts are kept for the next flush (publish does that).
                log.warning("stats: Redis unavailable (%s)", exc)
        with contextlib.suppress(*REDIS_DOWN):
            for region in self._published:
                await self.redis.delete(keys.presence(region, self.id))
                await self.redis.zrem(keys.gateways(region), self.id)


async def watchers_near(redis: Redis, region: str, lat: float, lon: float,
                        radii: list[int]) -> dict[int, int]:
    """How many sockets watch within each radius of (lat, lon), over every live gateway."""
    now = time.time()
    gateways = await redis.zrangebyscore(keys.gateways(region), now - PRESENCE_TTL_S, "+inf")
    grid = CellGrid(PRESENCE_CELL_DEG)
    counts = dict.fromkeys(radii, 0)
    for gw in gateways:
        cells = await redis.hgetall(keys.presence(region, gw.decode()))
        for cell, n in cells.items():
            distance = haversine_m(lat, lon, *grid.centre_of(int(cell)))
            for radius in radii:
                if distance <= radius:
                    counts[radius] += int(n)
    await redis.zremrangebyscore(keys.gateways(region), "-inf", now - 60)
    return counts


async def reach_of(redis: Redis, region: str, post_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for post_id in post_ids:
        values = await redis.hmget(keys.reach(region, post_id), "phone", "screen")
        out[post_id] = {"phone": int(values[0] or 0), "screen": int(values[1] or 0)}
    return out
