"""XREAD loops: one per region feed stream this process's sockets need.

Reads are bounded (BLOCK a few seconds) so that shutdown is prompt, and a lost
Redis connection is retried with jittered backoff while sockets stay open. A
region's reader starts with its first socket and stops once no socket has
needed it for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from redis.asyncio import Redis

from feed.hub import Hub
from streetfeed import keys, metrics
from streetfeed.redis_conn import REDIS_DOWN, text
from streetfeed.settings import Settings

log = logging.getLogger("streetfeed.reader")

# A region nobody has watched for this long is no longer read.
IDLE_STOP_S = 300.0


class FeedReader:
    def __init__(self, redis: Redis, settings: Settings, hub: Hub, region: str) -> None:
        self.redis = redis
        self.settings = settings
        self.hub = hub
        self.region = region
        self.stream = keys.feed_stream(region)
        # Loop time of the last successful read: /readyz tells a stuck reader by it.
        self.last_read: float | None = None

    async def start_position(self) -> str:
        last = await self.redis.xrevrange(self.stream, count=1)
        return text(last[0][0]) if last else "0-0"

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                position = self.hub.positions.get(self.region)
                if position is None:
                    position = await self.start_position()
                    self.hub.set_position(self.region, position)
                    self.last_read = asyncio.get_running_loop().time()
                reply = await self.redis.xread({self.stream: position},
                                               count=self.settings.gateway_batch,
                                               block=self.settings.gateway_block_ms)
                for _stream, entries in reply or ():
                    for entry_id, fields in entries:
                        self.hub.dispatch(self.region, text(entry_id), fields.get(b"d", b""))
                self.last_read = asyncio.get_running_loop().time()
                backoff = 0.1
            except REDIS_DOWN as exc:
                metrics.REDIS_RECONNECTS.labels("gateway").inc()
                log.warning("reader %s: Redis unavailable (%s); retrying in %.1fs", self.region,
                            exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 5.0)


class Readers:
    """The region readers of one process, started on demand."""

    def __init__(self, redis: Redis, settings: Settings, hub: Hub) -> None:
        self.redis = redis
        self.settings = settings
        self.hub = hub
        self.readers: dict[str, tuple[FeedReader, asyncio.Event, asyncio.Task[None]]] = {}
        self._idle_since: dict[str, float] = {}

    def ensure(self, regions: list[str]) -> None:
        for region in regions:
            self._idle_since.pop(region, None)
            if region not in self.readers:
                reader = FeedReader(self.redis, self.settings, self.hub, region)
                stop = asyncio.Event()
                task = asyncio.create_task(reader.run(stop), name=f"reader-{region}")
                self.readers[region] = (reader, stop, task)

    async def stop_idle(self, now: float, idle_s: float = IDLE_STOP_S) -> None:
        for region in list(self.readers):
            if self.hub.region_users[region] > 0:
                self._idle_since.pop(region, None)
                continue
            since = self._idle_since.setdefault(region, now)
            if now - since >= idle_s:
                await self._stop(region)

    async def _stop(self, region: str) -> None:
        _reader, stop, task = self.readers.pop(region)
        self._idle_since.pop(region, None)
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Positions of a region no longer read must not be offered as a cursor.
        self.hub.positions.pop(region, None)
        self.hub.positioned(region).clear()

    async def stop_all(self) -> None:
        for region in list(self.readers):
            await self._stop(region)

    def stalled(self, now: float, limit_s: float) -> list[str]:
        return [region for region, (reader, _s, _t) in self.readers.items()
                if reader.last_read is None or now - reader.last_read > limit_s]
