"""Rate limits in Redis: fixed one-minute windows shared by every process.

Client addresses are never stored: they are keyed by a salted hash whose salt
is kept in Redis (shared by all processes) and changes every day.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from redis.asyncio import Redis

from streetfeed import keys, metrics
from streetfeed.errors import RateLimited

WINDOW_S = 60
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._salt: tuple[int, bytes] | None = None
        self._count = redis.register_script(_COUNT)

    async def _daily_salt(self) -> bytes:
        day = int(time.time() // 86_400)
        if self._salt is None or self._salt[0] != day:
            key = keys.salt(day)
            await self.redis.set(key, secrets.token_hex(16), nx=True, ex=2 * 86_400)
            value = await self.redis.get(key)
            self._salt = (day, value or b"")
        return self._salt[1]

    async def address_key(self, address: str) -> str:
        digest = hashlib.sha256(await self._daily_salt() + address.encode()).hexdigest()
        return digest[:24]

    async def hit(self, limit_name: str, subject: str, limit: int) -> None:
        """Count one use; raise RateLimited (429) past `limit` uses in the current window."""
        now = time.time()
        window = int(now // WINDOW_S)
        key = keys.rate(limit_name, subject, window)
        count = await self._count(keys=[key], args=[2 * WINDOW_S])
        if count > limit:
            metrics.RATE_LIMITED.labels(limit_name).inc()
            retry = max(1, int(WINDOW_S - now % WINDOW_S + 0.999))
            raise RateLimited(f"too many requests ({limit_name}); retry in {retry}s",
                              retry_after=retry)
