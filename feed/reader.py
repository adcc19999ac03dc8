"""One XREAD loop per web process: `feed` stream -> Hub.dispatch.

Reads are bounded (BLOCK a few seconds) so that shutdown is prompt, and a lost
Redis connection is retried with jittered backoff while sockets stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from feed.hub import Hub
from streetfeed import keys, metrics
from streetfeed.settings import Settings

log = logging.getLogger("streetfeed.reader")


class FeedReader:
    def __init__(self, redis: Redis, settings: Settings, hub: Hub) -> None:
        self.redis = redis
        self.settings = settings
        self.hub = hub
        self.stream = keys.feed_stream(settings.region)
        self.reconnects = 0
        # Loop time of the last successful read: /readyz tells a stuck reader by it.
        self.last_read: float | None = None

    async def start_position(self) -> str:
        last = await self.redis.xrevrange(self.stream, count=1)
        return _text(last[0][0]) if last else "0-0"

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                if self.hub.position is None:
                    self.hub.set_position(await self.start_position())
                position = self.hub.position
                assert position is not None
                reply = await self.redis.xread({self.stream: position},
                                               count=self.settings.gateway_batch,
                                               block=self.settings.gateway_block_ms)
                for _stream, entries in reply or ():
                    for entry_id, fields in entries:
                        self.hub.dispatch(_text(entry_id), fields.get(b"d", b""))
                self.last_read = asyncio.get_running_loop().time()
                backoff = 0.1
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.reconnects += 1
                metrics.REDIS_RECONNECTS.labels("gateway").inc()
                log.warning("reader: Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 5.0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
