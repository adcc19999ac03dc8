"""Which photos exist, whose they are, and until when they are kept (Redis).

The bytes are in a `MediaStore` (a directory or a bucket); this index is the truth about
them, per region (one hash tag: each script touches one Cluster slot):
- keys.media_owner: id -> shop, so that a post names only its own shop's photos;
- keys.media_records: id -> MediaRecord, so that a post is built without the store;
- keys.media_keep: id scored by until when it is kept: a day once uploaded, then the
  lifetime of the latest post that shows it (never shortened: a withdrawn post's photos
  stay until its lifetime is over, as pages and caches may still show them);
- keys.media_bytes: shop -> total bytes kept, the quota.
Each change is one script, so that a sweep removing a photo and a post taking it cannot
interleave: either the post keeps it, or the post is refused `unknown_media`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import msgspec
from redis.asyncio import Redis

from schemas.media import MediaRecord
from storage import keys
from storage.redis_conn import async_reply, text

__all__ = ["MediaIndex", "MediaIndexes", "Registered"]

_decode_record = msgspec.json.Decoder(MediaRecord).decode
_encode = msgspec.json.Encoder().encode

_REGISTER = """
-- KEYS: owner, records, keep, bytes, deleting; ARGV: id, shop, record, size, keep_until,
--       quota, now, deleting_grace
-- 1: registered; 0: already this shop's (kept at least until keep_until); -1: over quota;
-- -2: its files are being deleted by the sweep (retry once they are gone).
local deleting = redis.call('HGET', KEYS[5], ARGV[1])
if deleting and tonumber(ARGV[7]) - tonumber(deleting) < tonumber(ARGV[8]) then return -2 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[3], 'GT', ARGV[5], ARGV[1])
  return 0
end
local total = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
if total + tonumber(ARGV[4]) > tonumber(ARGV[6]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('HINCRBY', KEYS[4], ARGV[2], ARGV[4])
return 1
"""

_TAKE = """
-- KEYS: owner, records, keep; ARGV: shop, keep_until, id...
-- The records of the ids, in order, each kept at least until keep_until; or, if one is
-- not the shop's, {0, that id} and nothing changes.
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[1] then return {0, ARGV[i]} end
end
local found = {1}
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[i])
  found[#found + 1] = redis.call('HGET', KEYS[2], ARGV[i])
end
return found
"""

_FORGET = """
-- KEYS: owner, records, keep, bytes, deleting; ARGV: id, now, size
-- Forgets the id if its time is over (a post may have taken it since it was listed), and
-- marks it being deleted: 1 forgotten (its files may go), 0 still kept.
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return 0 end
local shop = redis.call('HGET', KEYS[1], ARGV[1])
if shop then
  local left = redis.call('HINCRBY', KEYS[4], shop, -tonumber(ARGV[3]))
  if left <= 0 then redis.call('HDEL', KEYS[4], shop) end
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
return 1
"""


# A mark older than this is a sweep that died between forgetting and deleting: ignored
# (the orphan sweep removes what it left).
DELETING_GRACE_S = 600


class Registered(Enum):
    NEW = 1
    KNOWN = 0
    OVER_QUOTA = -1
    BEING_DELETED = -2


class MediaIndex:
    def __init__(self, redis: Redis, region: str) -> None:
        self.redis = redis
        self.region = region
        self._register = redis.register_script(_REGISTER)
        self._take = redis.register_script(_TAKE)
        self._forget = redis.register_script(_FORGET)

    async def known(self, shop_id: str, media_id: str) -> MediaRecord | None:
        """The shop's record of this id, if the shop has it."""
        owner = await async_reply(self.redis.hget(keys.media_owner(self.region), media_id))
        if owner is None or text(owner) != shop_id:
            return None
        record = await async_reply(self.redis.hget(keys.media_records(self.region), media_id))
        return None if record is None else _decode_record(record)

    async def register(self, record: MediaRecord, keep_until: float, quota_bytes: int,
                       now: float) -> Registered:
        reply = await self._register(
            keys=[keys.media_owner(self.region), keys.media_records(self.region),
                  keys.media_keep(self.region), keys.media_bytes(self.region),
                  keys.media_deleting(self.region)],
            args=[record.id, record.shop_id, _encode(record), record.bytes, repr(keep_until),
                  quota_bytes, repr(now), DELETING_GRACE_S])
        return Registered(int(reply))

    async def take(self, shop_id: str, media_ids: Sequence[str],
                   keep_until: float) -> list[MediaRecord] | str:
        """The records of the shop's `media_ids`, in order, now kept at least until
        `keep_until`; or the first id that is not the shop's (nothing is changed then)."""
        if not media_ids:
            return []
        reply = await self._take(
            keys=[keys.media_owner(self.region), keys.media_records(self.region),
                  keys.media_keep(self.region)],
            args=[shop_id, repr(keep_until), *media_ids])
        if int(reply[0]) == 0:
            return text(reply[1])
        return [_decode_record(r) for r in reply[1:]]

    async def total_bytes(self, shop_id: str) -> int:
        value = await async_reply(self.redis.hget(keys.media_bytes(self.region), shop_id))
        return 0 if value is None else int(value)

    async def due(self, now: float, limit: int = 500) -> list[MediaRecord | str]:
        """Ids whose time is over (their record, or the bare id if it has none)."""
        ids = [text(i) for i in await self.redis.zrangebyscore(
            keys.media_keep(self.region), "-inf", repr(now), start=0, num=limit)]
        if not ids:
            return []
        records = await async_reply(self.redis.hmget(keys.media_records(self.region), ids))
        return [i if r is None else _decode_record(r) for i, r in zip(ids, records, strict=True)]

    async def forget(self, media_id: str, size: int, now: float) -> bool:
        """Forget the id if its time is over; True if it was (its files may be deleted)."""
        reply = await self._forget(
            keys=[keys.media_owner(self.region), keys.media_records(self.region),
                  keys.media_keep(self.region), keys.media_bytes(self.region),
                  keys.media_deleting(self.region)],
            args=[media_id, repr(now), size])
        return int(reply) == 1

    async def deleted(self, media_id: str) -> None:
        """The forgotten id's files are gone: the same photo may be uploaded again."""
        await async_reply(self.redis.hdel(keys.media_deleting(self.region), media_id))

    async def kept(self, media_ids: Sequence[str]) -> set[str]:
        """Those of the ids this region keeps."""
        if not media_ids:
            return set()
        scores = await self.redis.zmscore(keys.media_keep(self.region), list(media_ids))
        return {i for i, s in zip(media_ids, scores, strict=True) if s is not None}


class MediaIndexes(dict[str, MediaIndex]):
    """Each region's MediaIndex, built on first use and kept: a request does not register
    the scripts (and hash their text) again."""

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self.redis = redis

    def __missing__(self, region: str) -> MediaIndex:
        index = self[region] = MediaIndex(self.redis, region)
        return index
