"""Producers and their links to shops in Redis (keys in storage.keys, tag `{producers}`).

Every producer key shares one hash tag, so each script below touches one Cluster slot.
A producer is never deleted: its last shop leaving unlists it (its link set is empty,
and it leaves the listed GEO set the search reads), which takes it out of the page and
the search, while posts already delivered keep their copy of its name.

Creating is compare-and-set on the creations under one folded name: the caller reads that
name's producers near the point and their number together (`candidates`), decides by
rules.producers, and `add` creates only if no producer of that name was created
meanwhile, else says `RETRY`; so two shops naming the same producer at once get one
record (the later one sees the first and links), while names that differ never make each
other retry. Nothing here uses MULTI or WATCH, which a cluster client does not offer.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from enum import Enum

import msgspec
from redis.asyncio import Redis

from rules.geo import haversine_m
from rules.producers import fold_name
from schemas.limits import GEO_LAT_MAX, PRODUCER_SEARCH_SCAN
from schemas.producers import ProducerRecord
from storage import keys
from storage.redis_conn import text

__all__ = ["LAYOUT", "Added", "Candidates", "ProducerStore", "new_producer_id"]

# The producer keys' layout: 2 added the per-name twin sets (keys.producers_named) and the
# listed set (keys.producers_listed_geo); 3 folds Cyrillic and Greek look-alikes of Latin
# letters (rules.producers.fold_name). `upgrade` brings older data to it.
LAYOUT = "3"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ProducerRecord).decode

_CANDIDATES = """
-- KEYS: named geo; ARGV: lon, lat, radius_m, producer key prefix, folded name
-- (producer hashes are read by a prefix: they share the slot, and which ones are near is
-- only known inside the script). The set is one name's (by a digest): the fold is
-- compared all the same, so that a digest's collision can never join two names.
local out = {tostring(redis.call('ZCARD', KEYS[1]))}
local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2],
                         'BYRADIUS', ARGV[3], 'm')
for _, id in ipairs(found) do
  local f = redis.call('HMGET', ARGV[4] .. id, 'json', 'fold')
  if f[1] and f[2] == ARGV[5] then table.insert(out, f[1]) end
end
return out
"""

_ADD = """
-- KEYS: named geo, every producer's geo, producer, producer_shops, shop_producers,
--       listed geo
-- ARGV: the size of the named set the caller read ('' to link an existing producer),
--       producer id, lon, lat, record JSON, folded name, folded place, shop id, most
--       producers a shop links; to link an existing one, the record as this shop spells
--       it and where it puts it (JSON, lon, lat), written if nobody names it now
local creating = ARGV[1] ~= ''
if creating then
  if tostring(redis.call('ZCARD', KEYS[1])) ~= ARGV[1] then return 'retry' end
elseif redis.call('EXISTS', KEYS[3]) == 0 then
  return 'unknown'
end
if redis.call('SISMEMBER', KEYS[5], ARGV[2]) == 0
    and redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[9]) then
  return 'full'
end
local lon, lat = ARGV[3], ARGV[4]
if creating then
  redis.call('HSET', KEYS[3], 'json', ARGV[5], 'fold', ARGV[6], 'fold_place', ARGV[7])
  redis.call('GEOADD', KEYS[2], lon, lat, ARGV[2])
  redis.call('GEOADD', KEYS[1], lon, lat, ARGV[2])
elseif ARGV[10] ~= '' and redis.call('SCARD', KEYS[4]) == 0 then
  -- Unlisted: the shop naming it again writes it as it spells and places it, so that a
  -- shop that named then dropped it cannot fix its words for whoever comes next.
  lon, lat = ARGV[11], ARGV[12]
  redis.call('HSET', KEYS[3], 'json', ARGV[10], 'fold_place', ARGV[7])
  redis.call('GEOADD', KEYS[2], lon, lat, ARGV[2])
  redis.call('GEOADD', KEYS[1], lon, lat, ARGV[2])
end
redis.call('SADD', KEYS[4], ARGV[8])
redis.call('SADD', KEYS[5], ARGV[2])
-- Listed now (again, for a producer relinked): the search sees it.
redis.call('GEOADD', KEYS[6], lon, lat, ARGV[2])
return 'ok'
"""

_UNLINK = """
-- KEYS: producer_shops, shop_producers, listed geo; ARGV: shop id, producer id
local linked = redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[1], ARGV[1])
-- Its last shop gone, the producer is unlisted: out of the search's set.
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[2]) end
return linked
"""

# A post's producers: each must be linked to the shop (checked where the links are, in one
# script), answered in the order asked, or the first one that is not.
_TAKE = """
-- KEYS: shop_producers; ARGV: producer key prefix, producer ids...
local out = {''}
for i = 2, #ARGV do
  local json = false
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1 then
    json = redis.call('HGET', ARGV[1] .. ARGV[i], 'json')
  end
  if not json then return {ARGV[i]} end
  table.insert(out, json)
end
return out
"""

_OF_SHOP = """
-- KEYS: shop_producers; ARGV: producer key prefix
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local json = redis.call('HGET', ARGV[1] .. id, 'json')
  if json then table.insert(out, json) end
end
return out
"""

# Listed producers near a point whose folded name or place contains each word of the
# folded query (a byte substring of UTF-8 is a code-point substring: UTF-8 is
# self-synchronising), nearest first, at most ARGV[5]. Word by word, so that "moulin saint
# emilion" finds "Moulin de Saint-Émilion" and "moulin libourne" a mill in Libourne; a
# word is looked for in the name and place joined by a newline, which folding never
# leaves in either, so a word is never found across the two. Only the ARGV[7] nearest
# listed producers are read (COUNT), so a search's cost does not grow with what was
# created, listed or not (schemas.limits PRODUCER_SEARCH_SCAN says what a query then misses).
_SEARCH = """
-- KEYS: listed geo; ARGV: lon, lat, radius_m, folded query (words split by single spaces),
--       most answers, producer key prefix, most producers read
local out = {}
local most = tonumber(ARGV[5])
local words = {}
for word in string.gmatch(ARGV[4], '[^ ]+') do table.insert(words, word) end
local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2],
                         'BYRADIUS', ARGV[3], 'm', 'ASC', 'COUNT', ARGV[7])
for _, id in ipairs(found) do
  local f = redis.call('HMGET', ARGV[6] .. id, 'json', 'fold', 'fold_place')
  if f[1] then
    local text = f[2] .. '\\n' .. f[3]
    local every = true
    for _, word in ipairs(words) do
      if not string.find(text, word, 1, true) then
        every = false
        break
      end
    end
    if every then
      table.insert(out, f[1])
      if #out >= most then break end
    end
  end
end
return out
"""


def new_producer_id() -> str:
    return "pr_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


class Added(Enum):
    OK = "ok"
    RETRY = "retry"  # another producer was created since the candidates were read
    FULL = "full"  # the shop already links the most producers it may
    UNKNOWN = "unknown"  # linking a producer that does not exist


@dataclass(frozen=True, slots=True)
class Candidates:
    version: str
    records: list[ProducerRecord]


class ProducerStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._candidates = redis.register_script(_CANDIDATES)
        self._add = redis.register_script(_ADD)
        self._unlink = redis.register_script(_UNLINK)
        self._take = redis.register_script(_TAKE)
        self._of_shop = redis.register_script(_OF_SHOP)
        self._search = redis.register_script(_SEARCH)

    async def candidates(self, lat: float, lon: float, radius_m: float,
                         fold: str) -> Candidates:
        """Every producer (listed or not) within about `radius_m` whose folded name
        (rules.producers.fold_name, as `add` stored it) is `fold`, and the version of that
        name's creations when they were read."""
        raw = await self._candidates(keys=[keys.producers_named(fold)],
                                     args=[repr(lon), repr(lat), repr(radius_m),
                                           keys.producer(""), fold])
        return Candidates(version=text(raw[0]), records=[_decode(r) for r in raw[1:]])

    async def add(self, shop_id: str, record: ProducerRecord, *, create_at_version: str | None,
                  fold: str, fold_place: str = "", most: int,
                  respelled: ProducerRecord | None = None) -> Added:
        """Link the shop to `record`: an existing producer (`create_at_version` None), or a
        new one of folded name `fold`, created only if that name's creations still read
        `create_at_version`. Linking an existing one that no shop names now writes it as
        `respelled` (this shop's words and position, `fold_place` its place folded)."""
        again: list[bytes | str] = (["", "", ""] if respelled is None else
                                    [_encode(respelled), repr(respelled.lon),
                                     repr(respelled.lat)])
        result = await self._add(
            keys=[keys.producers_named(fold), keys.producers_geo(), keys.producer(record.id),
                  keys.producer_shops(record.id), keys.shop_producers(shop_id),
                  keys.producers_listed_geo()],
            args=["" if create_at_version is None else create_at_version, record.id,
                  repr(record.lon), repr(record.lat), _encode(record), fold, fold_place,
                  shop_id, most, *again])
        return Added(text(result))

    async def upgrade(self, batch: int = 500) -> bool:
        """Bring producer keys written by an older layout to LAYOUT: each record's folds
        made again by today's rules.producers.fold_name, each producer in its name's twin
        set, each linked one in the listed set (sets are only added to, and a fold only
        made again, so building them again, or twice at once, is harmless). Whether
        anything was done."""
        if text(await self.redis.get(keys.producers_layout()) or b"") == LAYOUT:
            return False
        start = 0
        while True:
            ids = [text(i) for i in
                   await self.redis.zrange(keys.producers_geo(), start, start + batch - 1)]
            if not ids:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.geopos(keys.producers_geo(), *ids)
                for producer_id in ids:
                    pipe.hget(keys.producer(producer_id), "json")
                    pipe.scard(keys.producer_shops(producer_id))
                positions, *rest = await pipe.execute()
            async with self.redis.pipeline(transaction=False) as pipe:
                for i, producer_id in enumerate(ids):
                    raw, linked, at = rest[2 * i], rest[2 * i + 1], positions[i]
                    if raw is None or at is None:
                        continue  # a half-written record: no script leaves one
                    record = _decode(raw)
                    fold = fold_name(record.name)
                    lon, lat = at
                    pipe.hset(keys.producer(producer_id),
                              mapping={"fold": fold, "fold_place": fold_name(record.place)})
                    pipe.geoadd(keys.producers_named(fold), (lon, lat, producer_id))
                    if linked:
                        pipe.geoadd(keys.producers_listed_geo(), (lon, lat, producer_id))
                await pipe.execute()
            start += batch
        await self.redis.set(keys.producers_layout(), LAYOUT)
        return True

    async def unlink(self, shop_id: str, producer_id: str) -> bool:
        """Whether the shop was linked to the producer (it no longer is)."""
        linked = await self._unlink(keys=[keys.producer_shops(producer_id),
                                          keys.shop_producers(shop_id),
                                          keys.producers_listed_geo()],
                                    args=[shop_id, producer_id])
        return bool(linked)

    async def take(self, shop_id: str, producer_ids: list[str]) -> list[ProducerRecord] | str:
        """The records of these producers, in order, if the shop links every one; else the
        first id it does not link."""
        if not producer_ids:
            return []
        raw = await self._take(keys=[keys.shop_producers(shop_id)],
                               args=[keys.producer(""), *producer_ids])
        if raw[0]:
            return text(raw[0])
        return [_decode(r) for r in raw[1:]]

    async def of_shop(self, shop_id: str) -> list[ProducerRecord]:
        raw = await self._of_shop(keys=[keys.shop_producers(shop_id)],
                                  args=[keys.producer("")])
        return [_decode(r) for r in raw]

    async def listed(self, producer_id: str) -> tuple[ProducerRecord, list[str]] | None:
        """A producer and the ids of the shops linked to it; None when unknown or unlisted."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.producer(producer_id), "json")
            pipe.smembers(keys.producer_shops(producer_id))
            raw, shop_ids = await pipe.execute()
        if raw is None or not shop_ids:
            return None
        return _decode(raw), sorted(text(s) for s in shop_ids)

    async def links(self, producer_ids: list[str],
                    most: int | None = None) -> dict[str, list[str]]:
        """The shops linked to each producer, in id order; with `most`, that many of them
        at most, drawn at random (SRANDMEMBER: distinct)."""
        if not producer_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for producer_id in producer_ids:
                if most is None:
                    pipe.smembers(keys.producer_shops(producer_id))
                else:
                    pipe.srandmember(keys.producer_shops(producer_id), most)
            rows = await pipe.execute()
        return {pid: sorted(text(s) for s in row)
                for pid, row in zip(producer_ids, rows, strict=True)}

    async def search(self, lat: float, lon: float, radius_m: float, folded_query: str,
                     most: int, scan: int = PRODUCER_SEARCH_SCAN) -> list[ProducerRecord]:
        """Listed producers within `radius_m` matching the folded query, nearest first,
        at most `most`, among the `scan` nearest listed ones."""
        # Producers only exist within GEO's latitudes (schemas.common.ShopLatitude): search
        # from the nearest such point, wider by the distance moved (as LiveIndex.snapshot).
        clamped = max(-GEO_LAT_MAX, min(GEO_LAT_MAX, lat))
        if clamped != lat:
            radius_m += haversine_m(lat, lon, clamped, lon)
            lat = clamped
        raw = await self._search(keys=[keys.producers_listed_geo()],
                                 args=[repr(lon), repr(lat), repr(radius_m), folded_query,
                                       most, keys.producer(""), scan])
        return [_decode(r) for r in raw]
