"""What the lifespan opens and the handlers use, typed."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from feed.gateway import Gateway
from feed.hub import Hub
from feed.reader import FeedReader
from streetfeed.clock import Clock
from streetfeed.live import LiveIndex
from streetfeed.ratelimit import RateLimiter
from streetfeed.settings import Settings
from web.ingest import Ingest


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    redis: Redis
    live: LiveIndex
    ingest: Ingest
    hub: Hub
    reader: FeedReader
    gateway: Gateway
    limiter: RateLimiter
