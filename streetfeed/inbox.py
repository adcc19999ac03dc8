"""The `in` stream: the only way a post (new, edited or automatic) enters Streetfeed.

Appends are never trimmed by length (the enricher trims what it has
acknowledged). With an idempotency key the check and the append are one
script: a retry gets the first answer and never a second entry.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import msgspec
from redis.asyncio import Redis

from schemas.posts import RawPost
from streetfeed import keys
from streetfeed.errors import Unavailable
from streetfeed.redis_conn import text, write_then_wait
from streetfeed.settings import Settings

_encode = msgspec.json.Encoder().encode

_IDEMPOTENT_APPEND = """
-- KEYS: idempotency key, in stream; ARGV: answer, ttl_s, entry
local previous = redis.call('GET', KEYS[1])
if previous then return previous end
redis.call('XADD', KEYS[2], '*', 'd', ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""


def new_post_id() -> str:
    return "p_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def derived_post_id(*parts: str) -> str:
    """A stable post id for posts the system makes (one per shop and opening change)."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return "p_" + base64.b32encode(digest[:10]).decode().lower()


class Inbox:
    def __init__(self, redis: Redis, region: str, settings: Settings) -> None:
        self.redis = redis
        self.region = region
        self.ttl = settings.idempotency_ttl_s
        self.durability = settings.durability
        self.wait_ms = settings.durability_timeout_ms

    async def append(self, raw: RawPost) -> None:
        stream = keys.in_stream(self.region)
        await self._durably(stream, ("XADD", stream, "*", "d", _encode(raw)))

    async def append_once(self, raw: RawPost, key: str, fingerprint: str) -> tuple[str, str]:
        """Append unless `key` was used before; the (post id, fingerprint) of the first use."""
        stream = keys.in_stream(self.region)
        answer = await self._durably(stream, (
            "EVAL", _IDEMPOTENT_APPEND, 2, keys.idempotency(self.region, raw.shop_id, key),
            stream, f"{raw.id} {fingerprint}", self.ttl, _encode(raw)))
        first_id, _, first_fingerprint = text(answer).partition(" ")
        return first_id, first_fingerprint

    async def _durably(self, key: str, command: tuple[Any, ...]) -> Any:
        """Run the write, made as durable as `durability` promises, or answer 503.

        "aof": in Redis with AOF on (fsync every second); "fsync": fsynced to the local
        AOF (WAITAOF 1 0); "replica": also received by a replica (WAIT 1), so that a
        failover keeps it.
        """
        if self.durability == "aof":
            return await self.redis.execute_command(*command)
        wait = (("WAITAOF", 1, 0, self.wait_ms) if self.durability == "fsync"
                else ("WAIT", 1, self.wait_ms))
        result, acks = await write_then_wait(self.redis, key, command, wait)
        confirmed = acks[0] >= 1 if isinstance(acks, list) else acks >= 1
        if not confirmed:
            raise Unavailable("the post was not confirmed durable in time; retry with the same "
                              "Idempotency-Key", code="not_durable", retry_after=1)
        return result
