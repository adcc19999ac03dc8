"""Rate limits in Redis: fixed one-minute windows shared by every process.

Client addresses are never stored: a limit counts an address (as rules.addresses groups
it: an IPv6 client under its /64) under an HMAC of it keyed by the day's key, which is
derived from the deployment's secret (settings.secret) and lives only in the processes'
memory. Nothing in Redis or its files can turn a counter's name back into an address or
a /64, even by trying every address of a network; and the key changes every day, so one
day's names say nothing about another's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

from redis.asyncio import Redis

from rules.addresses import counted_address
from rules.errors import RateLimited
from runtime import metrics
from runtime.settings import Secret
from storage import keys

__all__ = ["WINDOW_S", "RateLimiter"]

WINDOW_S = 60
DAY_S = 86_400
# ARGV[2] uses counted at once: the count after them (the key expires with its window).
_COUNT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RateLimiter:
    def __init__(self, redis: Redis, secret: Secret) -> None:
        self.redis = redis
        self._secret = secret.reveal().encode()
        # (day number, that day's key): only today's is kept.
        self._day_key: tuple[int, bytes] | None = None
        self._count = redis.register_script(_COUNT)
        # Uses of a counter waiting for its next round trip, and the counters with one in
        # flight (`_counted`).
        self._waiting: dict[str, list[asyncio.Future[int]]] = {}
        self._counting: dict[str, asyncio.Task[None]] = {}

    def _key_of(self, day: int) -> bytes:
        if self._day_key is not None and self._day_key[0] == day:
            return self._day_key[1]
        key = hmac.new(self._secret, f"address key {day}".encode(), hashlib.sha256).digest()
        # Only the newest day's key is kept: yesterday's is derived again when asked for.
        if self._day_key is None or day > self._day_key[0]:
            self._day_key = (day, key)
        return key

    def address_hash(self, address: str, now: float) -> str:
        """The name an address is counted under on the day of `now` (96 bits: no two
        addresses of one day meet); every address of one IPv6 /64 under one name."""
        return self._hash(counted_address(address), int(now // DAY_S))

    def address_hashes(self, address: str, now: float) -> tuple[str, str]:
        """The names of `address` today and yesterday: a limit on what an address has open
        reads both, or midnight (a new name) would hand it a fresh allowance."""
        day, counted = int(now // DAY_S), counted_address(address)
        return self._hash(counted, day), self._hash(counted, day - 1)

    def _hash(self, counted: str, day: int) -> str:
        return hmac.new(self._key_of(day), counted.encode(), hashlib.sha256).hexdigest()[:24]

    async def address_key(self, address: str) -> str:
        # A coroutine still, as when the salt came from Redis: its callers await it.
        return self.address_hash(address, time.time())

    async def hit(self, limit_name: str, subject: str, limit: int,
                  window_s: int = WINDOW_S) -> None:
        """Count one use; raise RateLimited (429) past `limit` uses in the current window
        (a minute unless said: photo uploads are counted by the hour)."""
        now = time.time()
        window = int(now // window_s)
        key = keys.rate(limit_name, subject, window)
        count = await self._counted(key, 2 * window_s)
        if count > limit:
            metrics.RATE_LIMITED.labels(limit_name).inc()
            retry = max(1, int(window_s - now % window_s + 0.999))
            raise RateLimited(f"too many requests ({limit_name}); retry in {retry}s",
                              retry_after=retry)

    async def _counted(self, key: str, ttl_s: int) -> int:
        """Count one use of `key`: its count, this use included. The uses made while a
        round trip for the same counter is under way are counted together by the next one
        (INCRBY): a restart's storm took 10,000 sockets from one proxy's address, a round
        trip each (bench/storm.py). Each use still gets a count of its own, in order, so
        a limit refuses exactly the uses past it, as one INCR each did."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if key not in self._counting:
            self._counting[key] = asyncio.create_task(self._count_waiting(key, ttl_s))
        return await future

    async def _count_waiting(self, key: str, ttl_s: int) -> None:
        batch: list[asyncio.Future[int]] = []
        try:
            while batch := self._waiting.pop(key, []):
                try:
                    count = await self._count(keys=[key], args=[ttl_s, len(batch)])
                except Exception as exc:
                    for future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                first = int(count) - len(batch)
                for rank, future in enumerate(batch, 1):
                    if not future.done():  # else its caller left (a socket closed)
                        future.set_result(first + rank)
        except BaseException:
            # Cancelled (the process stopping): nobody waits for ever on a count.
            for future in (*batch, *self._waiting.pop(key, [])):
                future.cancel()
            raise
        finally:
            del self._counting[key]
