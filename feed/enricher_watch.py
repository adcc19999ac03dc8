"""Are the enrichers keeping up with the regions this process serves? (rules.pipeline)

A stuck enricher publishes nothing, so the feed stream stays readable and quiet: the
readers alone would keep telling every socket `live: true` while accepted posts wait.
Every few seconds this asks Redis, for every region, since when posts have stopped
flowing (the oldest post waiting, the enrichers' last beat) and marks the regions stuck
(Readers.stalled): /readyz says so, and the readers' next liveness check tells the
sockets of the regions read here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from redis.asyncio import Redis

from feed.reader import Readers, rfc3339
from rules.pipeline import stalled_since_ms
from runtime.settings import Settings
from storage.inbox import enricher_activity

__all__ = ["EnricherWatch"]

log = logging.getLogger("streetfeed.gateway")

# How often each region is asked: a stall is told within this after enricher_stall_s.
CHECK_INTERVAL_S = 2.0


class EnricherWatch:
    def __init__(self, redis: Redis, settings: Settings, readers: Readers) -> None:
        self.redis = redis
        self.readers = readers
        self.stall_ms = int(settings.enricher_stall_s * 1000)
        self.regions = settings.region_names

    async def check(self) -> None:
        stalled: dict[str, str] = {}
        # Every region, read here or not: /readyz answers for the deployment whichever
        # process the probe reaches (a cold try got "ready" from one with no socket).
        for region in self.regions:
            now_ms, waiting_ms, tried_ms = await enricher_activity(self.redis, region)
            since_ms = stalled_since_ms(now_ms, waiting_ms, tried_ms, self.stall_ms)
            if since_ms is not None:
                stalled[region] = rfc3339(datetime.fromtimestamp(since_ms / 1000, UTC))
        for region in stalled.keys() - self.readers.stalled.keys():
            log.warning("enrichers of region %s are stuck: a post waits since %s",
                        region, stalled[region])
        for region in self.readers.stalled.keys() - stalled.keys():
            log.info("enrichers of region %s publish again", region)
        self.readers.stalled = stalled

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_INTERVAL_S)
