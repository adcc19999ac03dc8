"""What the lifespan opens and the handlers use, typed."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from feed.gateway import Gateway
from feed.hub import Hub
from feed.presence import PresenceBoard
from feed.reader import Readers
from rules.clock import Clock
from runtime.settings import Settings
from services.directory import ShopDirectory
from services.ingest import Ingest
from storage.live import LiveIndex
from storage.ratelimit import RateLimiter


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
