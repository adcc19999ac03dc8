"""The shop registry in Redis: read, list, authenticate, change a record atomically.

A record changes by compare-and-set (one script, retried on conflict), so two
concurrent updates cannot lose one another; WATCH is not offered by a cluster client.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from rules.categories import migrated
from rules.clock import Clock
from rules.errors import NotFound, Unauthorized
from rules.shops import hash_token, new_token, token_matches
from schemas.categories import CATEGORY_CODES
from schemas.shops import ShopRecord
from storage import keys
from storage.redis_conn import async_reply, get_many, publish

__all__ = ["announce_change", "authenticate", "change_shop", "check_token", "decode_record",
           "encode_record", "get_shop", "list_shops", "require_shop", "rotate_token"]


_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""
encode_record = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(ShopRecord).decode


def decode_record(raw: bytes) -> ShopRecord:
    """A stored record, its category as a code. Records written before categories were
    codes hold free text ("boulangerie", "épicerie fine"): they are migrated here, as they
    are read, rather than by a one-off job at start. Every process that reads a shop (web,
    enricher, scheduler, demo, CLI) decodes it here, so none ever sees the old text, even
    during a rolling deploy, and there is no job to order against other processes or to
    repeat on a cluster; the cost is a set lookup per read. The code is written back with
    the record's next change (`change_shop` stores what it decoded)."""
    record = _decode_record(raw)
    if record.category in CATEGORY_CODES:
        return record
    return msgspec.structs.replace(record, category=migrated(record.category))


async def get_shop(redis: Redis, shop_id: str) -> ShopRecord | None:
    raw = await redis.get(keys.shop(shop_id))
    return None if raw is None else decode_record(raw)


async def list_shops(redis: Redis, *, include_disabled: bool = False) -> list[ShopRecord]:
    ids = sorted(i.decode() for i in await async_reply(redis.smembers(keys.shops_index())))
    if not ids:
        return []
    values = await get_many(redis, [keys.shop(i) for i in ids])
    records = [decode_record(v) for v in values if v is not None]
    return [r for r in records if include_disabled or not r.disabled]


async def require_shop(redis: Redis, shop_id: str) -> ShopRecord:
    record = await get_shop(redis, shop_id)
    if record is None or record.disabled:
        raise NotFound(f"no shop with id {shop_id!r}", code="unknown_shop")
    return record


async def authenticate(redis: Redis, shop_id: str, authorization: str | None) -> ShopRecord:
    """The shop named in the path, if the bearer token is its own."""
    if not authorization:
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="missing_token")
    return await check_token(redis, shop_id, token.strip())


async def check_token(redis: Redis, shop_id: str, token: str) -> ShopRecord:
    record = await require_shop(redis, shop_id)
    if not token_matches(token, record.token_hash):
        raise Unauthorized("the token is not valid for this shop", code="invalid_token")
    return record


async def change_shop(redis: Redis, shop_id: str,
                      change: Callable[[ShopRecord], ShopRecord]) -> ShopRecord:
    """Apply `change` to the stored record atomically: compare-and-set, retried on conflict
    (a script rather than WATCH, which a cluster client does not offer)."""
    key = keys.shop(shop_id)
    swap = redis.register_script(_COMPARE_AND_SET)
    while True:
        raw = await redis.get(key)
        if raw is None:
            raise NotFound(f"no shop with id {shop_id!r}", code="unknown_shop")
        updated = change(decode_record(raw))
        if await swap(keys=[key], args=[raw, encode_record(updated)]):
            await redis.incr(keys.shops_version())  # shop lists look again (services.directory)
            await announce_change(redis, shop_id)
            return updated


async def announce_change(redis: Redis, shop_id: str) -> None:
    """Tell open consoles of the shop that it changed (its record, session or producers):
    they push what they show again, or end if its token changed (feed.console)."""
    await publish(redis, keys.shop_changes_channel(), shop_id.encode())


async def rotate_token(redis: Redis, shop_id: str, clock: Clock) -> str:
    token = new_token()
    await change_shop(redis, shop_id, lambda r: msgspec.structs.replace(
        r, token_hash=hash_token(token), updated_at=clock.now()))
    return token
