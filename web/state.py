"""What the lifespan opens and the handlers use, typed."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from feed.gateway import Gateway
from feed.hub import Hub
from feed.presence import PresenceBoard
from feed.reader import Readers
from streetfeed.clock import Clock
from streetfeed.live import LiveIndex
from streetfeed.ratelimit import RateLimiter
from streetfeed.settings import Settings
from web.directory import ShopDirectory
from web.ingest import Ingest


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    redis: Redis
    lives: dict[str, LiveIndex]  # one per configured region
    ingest: Ingest
    hub: Hub
    readers: Readers
    gateway: Gateway
    limiter: RateLimiter
    gateway_id: str  # this process among the gateways (presence reports, /readyz)
    presence: PresenceBoard  # the console's audience, from the gateways' reports
    shops: ShopDirectory  # GET /api/v1/shops, cached
