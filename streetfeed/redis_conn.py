"""The one way every component opens Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from streetfeed.errors import ConfigError
from streetfeed.settings import Settings


def open_redis(settings: Settings) -> Redis:
    if not settings.redis_url:
        raise ConfigError("no Redis URL: set REDIS_URL or start through `streetfeed up`")
    # Timeouts above the longest blocking read (XREAD BLOCK) so only a dead link times out.
    return Redis.from_url(settings.redis_url, socket_connect_timeout=5,
                          socket_timeout=max(10.0, settings.gateway_block_ms / 1000 + 5),
                          health_check_interval=30)
