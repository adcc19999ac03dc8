"""XREAD loops: one per region feed stream this process's sockets need.

Reads are bounded (BLOCK a few seconds) so that shutdown is prompt and a stalled
read is noticed; each loop runs supervised (any failure is logged and retried
with backoff while sockets stay open). A region's reader starts with its first
socket and stops once no socket has needed it for a while. Whether each region
can be read now is what the sockets are told in `status` frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from datetime import datetime

from redis.asyncio import Redis

from feed.hub import Hub
from rules.clock import Clock
from runtime.settings import Settings
from services.supervision import Backoff, supervised
from storage import keys
from storage.redis_conn import text

__all__ = ["Readers", "rfc3339"]

log = logging.getLogger("streetfeed.reader")



class FeedReader:
    def __init__(self, redis: Redis, settings: Settings, hub: Hub, region: str,
                 clock: Clock) -> None:
        self.redis = redis
        self.settings = settings
        self.hub = hub
        self.region = region
        self.clock = clock
        self.stream = keys.feed_stream(region)
        # Loop time of the last successful read (or of the start): a stuck reader is told
        # by it.
        self.last_read = asyncio.get_running_loop().time()
        # Wall time of the last successful read (or of the start): `since` in `status`.
        self.last_read_at: datetime = clock.now()
        # The last read failed (Redis unreachable, or any other error): not live.
        self.failing = False

    async def start_position(self) -> str:
        last = await self.redis.xrevrange(self.stream, count=1)
        return text(last[0][0]) if last else "0-0"

    async def run(self, stop: asyncio.Event) -> None:
        await supervised(f"reader-{self.region}", lambda: self._read(stop), stop,
                         backoff=Backoff(0.1, 5.0), component="gateway")

    async def _read(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                position = self.hub.positions.get(self.region)
                if position is None:
                    position = await self.start_position()
                    self.hub.set_position(self.region, position)
                reply = await self.redis.xread({self.stream: position},
                                               count=self.settings.gateway_batch,
                                               block=self.settings.gateway_block_ms)
                self._read_ok(loop.time())
                for _stream, entries in reply or ():
                    self.hub.dispatch_many(self.region, [(text(entry_id), fields.get(b"d", b""))
                                                         for entry_id, fields in entries])
        except BaseException:
            self.failing = True
            raise

    def _read_ok(self, now: float) -> None:
        self.last_read = now
        self.last_read_at = self.clock.now()
        self.failing = False

    def healthy(self, now: float) -> bool:
        """Read without error within its BLOCK time (plus a grace)."""
        limit = self.settings.gateway_block_ms / 1000 + self.settings.reader_stall_grace_s
        return not self.failing and now - self.last_read <= limit


class Readers:
    """The region readers of one process, started on demand."""

    def __init__(self, redis: Redis, settings: Settings, hub: Hub, clock: Clock) -> None:
        self.redis = redis
        self.settings = settings
        self.hub = hub
        self.clock = clock
        self.readers: dict[str, tuple[FeedReader, asyncio.Event, asyncio.Task[None]]] = {}
        self._idle_since: dict[str, float] = {}
        # Regions whose enrichers are stuck, since when (feed.enricher_watch): read or
        # not, their posts do not flow.
        self.stalled: dict[str, str] = {}

    def ensure(self, regions: list[str]) -> None:
        for region in regions:
            self._idle_since.pop(region, None)
            if region not in self.readers:
                reader = FeedReader(self.redis, self.settings, self.hub, region, self.clock)
                stop = asyncio.Event()
                # A context of its own: started from a socket's setup, it would otherwise
                # log every line for ever with that socket's request id.
                task = asyncio.create_task(reader.run(stop), name=f"reader-{region}",
                                           context=contextvars.Context())
                self.readers[region] = (reader, stop, task)

    async def stop_idle(self, now: float) -> None:
        idle_s = self.settings.reader_idle_stop_s
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
        # Whatever the reader ended with, stopping it must not fail its caller.
        await asyncio.gather(task, return_exceptions=True)
        # Positions of a region no longer read must not be offered as a cursor.
        self.hub.positions.pop(region, None)
        self.hub.positioned(region).clear()

    async def stop_all(self) -> None:
        for region in list(self.readers):
            await self._stop(region)

    def unhealthy(self, now: float) -> dict[str, FeedReader]:
        """Readers that cannot read their region now (failing, or stalled)."""
        return {region: reader for region, (reader, _s, _t) in self.readers.items()
                if not reader.healthy(now)}

    def check_liveness(self, now: float) -> None:
        """Tell the hub which regions' posts do not flow now (cannot be read, or their
        enrichers are stuck), and so every socket concerned."""
        down = {region: rfc3339(reader.last_read_at)
                for region, reader in self.unhealthy(now).items()}
        for region, since in self.stalled.items():
            if region in self.readers:
                down[region] = min(since, down.get(region, since))
        self.hub.set_down(down)

    async def watch(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        """Check liveness every `interval_s`: sockets hear of an outage within seconds."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            self.check_liveness(loop.time())


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
