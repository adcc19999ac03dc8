"""Shops' own opening_change posts as overrides of their hours: read and prune.

They are written only by the live index's scripts (storage.live), in the same script as
the post: a publish adds or replaces one, a withdrawal ends it at that moment, and an
expiry needs nothing (it ends when the post does). Ended ones stay KEEP_ENDED_S, so that
the scheduler, running a minute later or after downtime, still sees when the shop's word
stopped and the hours took over again; the scheduler prunes them after that.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from schemas.hours import OpeningOverride
from storage import keys
from storage.redis_conn import async_reply, text

__all__ = ["KEEP_ENDED_S", "encode", "of_region", "of_shop", "prune"]

KEEP_ENDED_S = 86_400

encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(OpeningOverride).decode

_PRUNE = """
-- KEYS: openings, opening_shops; ARGV: shop_id, ended before (ts), field...
for i = 3, #ARGV do
  local o = redis.call('HGET', KEYS[1], ARGV[i])
  if o and cjson.decode(o).ends_ts < tonumber(ARGV[2]) then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""


def _decoded(values: dict[bytes, bytes]) -> list[OpeningOverride]:
    out = []
    for value in values.values():
        try:
            out.append(_decode(value))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # one bad entry must not hide the shop's hours
    return sorted(out, key=lambda o: (o.starts_ts, o.post_id))


async def of_shop(redis: Redis, region: str, shop_id: str) -> list[OpeningOverride]:
    return _decoded(await async_reply(redis.hgetall(keys.openings(region, shop_id))))


async def of_region(redis: Redis, region: str) -> dict[str, list[OpeningOverride]]:
    """Every shop of the region that has overrides (ended ones included), in two round trips."""
    shop_ids = sorted(text(s) for s in await async_reply(
        redis.smembers(keys.opening_shops(region))))
    if not shop_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for shop_id in shop_ids:
            pipe.hgetall(keys.openings(region, shop_id))
        replies = await pipe.execute()
    return {s: found for s, reply in zip(shop_ids, replies, strict=True)
            if (found := _decoded(reply))}


async def prune(redis: Redis, region: str, shop_id: str, overrides: list[OpeningOverride],
                now_ts: float) -> None:
    """Forget the overrides that ended more than KEEP_ENDED_S ago (compared again inside the
    script: one moved by an edit meanwhile stays)."""
    old = [o.post_id for o in overrides if o.ends_ts < now_ts - KEEP_ENDED_S]
    if old:
        script = redis.register_script(_PRUNE)
        await script(keys=[keys.openings(region, shop_id), keys.opening_shops(region)],
                     args=[shop_id, repr(now_ts - KEEP_ENDED_S), *old])
