"""POST -> `in` stream: the only way a post enters Streetfeed.

A 202 is answered only once the raw post is in the region's `in` stream (never
trimmed by length: the enricher trims what it has acknowledged); with
an Idempotency-Key the check and the append are one script, so a retried
request gets the first answer and never a second post.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import msgspec
from redis.asyncio import Redis

from schemas.posts import PostIn, RawPost
from schemas.shops import ShopRecord
from streetfeed import keys
from streetfeed.clock import Clock
from streetfeed.errors import Conflict, InvalidInput
from streetfeed.moderation import Policy, check_post
from streetfeed.settings import IDEMPOTENCY_KEY_MAX, Settings

_decode_post = msgspec.json.Decoder(PostIn).decode
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


def decode_post(body: bytes) -> PostIn:
    try:
        return _decode_post(body)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc), code="invalid_post") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json", status=400) from None


class Ingest:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock, policy: Policy) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.policy = policy
        self._append = redis.register_script(_IDEMPOTENT_APPEND)

    async def accept(self, shop: ShopRecord, body: bytes, idempotency_key: str | None) -> str:
        """Validate and append a post; its public id."""
        post = decode_post(body)
        now = self.clock.now()
        rejection = check_post(post, now, self.policy)
        if rejection is not None:
            raise InvalidInput(rejection.message, code=rejection.code)
        post_id = new_post_id()
        entry = _encode(RawPost(id=post_id, shop_id=shop.id, accepted_at=now, body=post))
        stream = keys.in_stream(shop.region)
        if idempotency_key is None:
            await self.redis.xadd(stream, {"d": entry})
            return post_id
        key_ok = 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX
        if not key_ok or not idempotency_key.isprintable():
            raise InvalidInput(f"Idempotency-Key: expected 1..{IDEMPOTENCY_KEY_MAX} printable "
                               "characters", code="invalid_idempotency_key", status=400)
        fingerprint = hashlib.sha256(body).hexdigest()
        answer = await self._append(
            keys=[keys.idempotency(shop.region, shop.id, idempotency_key), stream],
            args=[f"{post_id} {fingerprint}", self.settings.idempotency_ttl_s, entry],
        )
        first_id, _, first_fingerprint = (answer.decode() if isinstance(answer, bytes)
                                          else answer).partition(" ")
        if first_fingerprint != fingerprint:
            raise Conflict("this Idempotency-Key was used for a different post",
                           code="idempotency_key_reused")
        return first_id
