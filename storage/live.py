"""The live index: what is visible now, by place, plus the ordered `feed` stream.

Every change to what passers-by see (publish, expire, withdraw) is one Lua
script over keys of one region (one Cluster slot), so the geo index, the post
hash and the `feed` entry can never disagree, and running a change twice
changes nothing more (enricher redelivery, scheduler retries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT

from rules.geo import haversine_m
from runtime.settings import Settings
from schemas.feed import FeedEntry
from schemas.limits import GEO_LAT_MAX
from storage import keys
from storage.holds import HoldStore
from storage.redis_conn import async_reply, hmget_many, text

__all__ = ["LiveIndex", "Publication", "live_posts_newest_first", "shop_live_posts",
           "stream_id_key"]

_encode = msgspec.json.Encoder().encode

# Appends a feed entry and trims the stream by count (MAXLEN, a cap for a runaway region)
# and by age (MINID: the entries of the last retention_ms, what resume needs). XADD takes
# one of the two, so the age goes to an XTRIM in the same script. Its horizon comes from
# the new entry's id, whose ms part is the server's clock, the one every cursor is read
# by (rules.cursor.horizon is the same rule on the gateway's side). `~`: whole macro nodes
# only (cheap); a few entries older than the horizon may stay, the gateway resets their
# cursors all the same.
_APPEND = """
local function append(feed, maxlen, retention_ms, entry)
  local id = redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*', 'd', entry)
  local ms = tonumber(string.match(id, '^(%d+)%-'))
  local horizon = ms - tonumber(retention_ms)
  if horizon > 0 then
    redis.call('XTRIM', feed, 'MINID', '~', string.format('%d-0', horizon))
  end
  return id
end
"""

_PUBLISH = _APPEND + """
-- KEYS: post, active, expiry, shop_posts, feed, gone, openings, opening_shops, openings_version,
--       in (the stream the source entry came from)
-- ARGV: post_id, source, post_json, lat, lon, expires_ts, shop_id, kind, maxlen, entry,
--       raw (the input, for later edits), edit ('1': only while the post is live),
--       opening (the post as an override of the shop's hours, '' when it is none),
--       local ('1' or '0'), the entry of an edit that was local before ('' when the post
--       is local now, or not an edit), retention (ms), the shop-changes channel, the
--       consumer group that read the source ('' when it came from none)
local function publish()
if redis.call('EXISTS', KEYS[6]) == 1 then return false end
local source = redis.call('HGET', KEYS[1], 'source')
if source == ARGV[2] then return redis.call('HGET', KEYS[1], 'feed_id') end
if ARGV[12] == '1' and not source then return false end
local entry = ARGV[10]
if ARGV[15] ~= '' and redis.call('HGET', KEYS[1], 'local') == '1' then entry = ARGV[15] end
local feed_id = append(KEYS[5], ARGV[9], ARGV[16], entry)
redis.call('HSET', KEYS[1], 'json', ARGV[3], 'feed_id', feed_id, 'source', ARGV[2],
           'lat', ARGV[4], 'lon', ARGV[5], 'expires_at', ARGV[6], 'shop_id', ARGV[7],
           'kind', ARGV[8], 'raw', ARGV[11], 'local', ARGV[14])
redis.call('GEOADD', KEYS[2], ARGV[5], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
if ARGV[13] ~= '' and redis.call('HGET', KEYS[7], ARGV[1]) ~= ARGV[13] then
  redis.call('HSET', KEYS[7], ARGV[1], ARGV[13])
  redis.call('SADD', KEYS[8], ARGV[7])
  redis.call('INCR', KEYS[9])
  -- The shop's open state changed: cached profiles go (services.profiles).
  redis.call('PUBLISH', ARGV[17], ARGV[7])
end
return feed_id
end
-- Acknowledged in the same step, whatever the outcome (published, already published,
-- withdrawn, an edit of a gone post): a crash cannot leave it published and pending, and
-- the enricher needs no XACK of its own for it. A script that fails acknowledges nothing:
-- the entry stays pending and is retried (publishing is idempotent by source).
local result = publish()
if ARGV[18] ~= '' then redis.call('XACK', KEYS[10], ARGV[18], ARGV[2]) end
return result
"""

_REMOVE = _APPEND + """
-- KEYS: post, active, expiry, feed, gone, openings_version
-- ARGV: post_id, type ('expired'|'withdrawn'), now_ts, maxlen, shop_id ('' = any),
--       shop posts key prefix (the shop is only known once the post is read),
--       how long a withdrawn id is remembered (s), openings key prefix, retention (ms),
--       the shop-changes channel
local fields = redis.call('HMGET', KEYS[1], 'expires_at', 'shop_id', 'kind', 'lat', 'lon')
if not fields[1] then return false end
if ARGV[5] ~= '' and fields[2] ~= ARGV[5] then return false end
if ARGV[2] == 'expired' and tonumber(fields[1]) > tonumber(ARGV[3]) then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', ARGV[6] .. fields[2], ARGV[1])
if ARGV[2] == 'withdrawn' then
  redis.call('SET', KEYS[5], '1', 'EX', ARGV[7])
  -- A withdrawn override ends now; it stays (ended) so the scheduler sees the end.
  local openings = ARGV[8] .. fields[2]
  local opening = redis.call('HGET', openings, ARGV[1])
  if opening then
    local o = cjson.decode(opening)
    if o.ends_ts > tonumber(ARGV[3]) then
      o.ends_ts = tonumber(ARGV[3])
      redis.call('HSET', openings, ARGV[1], cjson.encode(o))
      redis.call('INCR', KEYS[6])
      redis.call('PUBLISH', ARGV[10], fields[2])
    end
  end
end
local entry = cjson.encode({type = ARGV[2], id = ARGV[1], kind = fields[3],
                            lat = tonumber(fields[4]), lon = tonumber(fields[5])})
return append(KEYS[4], ARGV[4], ARGV[9], entry)
"""

# The snapshot in one atomic read: nearest first, with each post's feed id so
# the gateway can leave out what it is about to deliver live anyway.
_SNAPSHOT = """
-- KEYS: active, feed; ARGV: lon, lat, radius_m, count, post key prefix
-- (post hashes are read by a prefix: they share the region's slot, and which
-- ones exist is only known inside the script)
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if last[1] then last_id = last[1][1] end
local ids = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2],
                       'BYRADIUS', ARGV[3], 'm', 'ASC', 'COUNT', ARGV[4], 'WITHDIST')
local out = {last_id}
local prefix = ARGV[5]
for _, item in ipairs(ids) do
  local f = redis.call('HMGET', prefix .. item[1], 'json', 'feed_id', 'expires_at', 'kind',
                       'lat', 'lon', 'local')
  if f[1] then
    table.insert(out, {item[1], item[2], f[1], f[2], f[3], f[4], f[5], f[6], f[7] or '0'})
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Publication:
    """One post to make live (LiveIndex.publish says what each field is)."""
    post_id: str
    source: str
    post_json: bytes
    kind: str
    lat: float
    lon: float
    expires_ts: float
    shop_id: str
    raw: bytes
    edit: bool = False
    opening: bytes = b""
    local: bool = False


@dataclass(frozen=True, slots=True)
class LivePost:
    id: str
    distance_m: float
    json: bytes
    feed_id: str
    expires_ts: float
    kind: str
    lat: float
    lon: float
    # Names a producer within STREETFEED_LOCAL_KM of its shop (rules.enrich).
    local: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    last_id: str
    posts: list[LivePost]


async def shop_live_posts(redis: Redis, region: str, shop_id: str,
                          *fields: str) -> list[tuple[str, list[bytes | None]]]:
    """A shop's live post ids with these fields of each, in two round trips (not one a post)."""
    ids = [text(i) for i in await async_reply(
        redis.smembers(keys.shop_posts(region, shop_id)))]
    values = await hmget_many(redis, [keys.post(region, i) for i in ids], *fields)
    return list(zip(ids, values, strict=True))


async def live_posts_newest_first(redis: Redis, region: str, shop_id: str,
                                  now_ts: float) -> list[tuple[str, bytes]]:
    """A shop's live posts, (id, public JSON), newest first (by feed entry)."""
    live: list[tuple[tuple[int, int], str, bytes]] = []
    for post_id, (json_, feed_id, expires) in await shop_live_posts(
            redis, region, shop_id, "json", "feed_id", "expires_at"):
        if json_ is not None and feed_id is not None and float(expires or 0) > now_ts:
            live.append((stream_id_key(feed_id), post_id, json_))
    live.sort(reverse=True)
    return [(post_id, json_) for _key, post_id, json_ in live]


def stream_id_key(entry_id: bytes | str) -> tuple[int, int]:
    """A stream id as a sortable pair (ms, seq)."""
    ms, _, seq = text(entry_id).partition("-")
    return int(ms), int(seq or 0)


class LiveIndex:
    def __init__(self, redis: Redis, region: str, settings: Settings) -> None:
        self.redis = redis
        self.region = region
        self.feed_maxlen = settings.feed_maxlen
        self.feed_retention_ms = settings.feed_retention_s * 1000
        self.withdrawn_ttl_s = settings.withdrawn_ttl_s
        self._publish = redis.register_script(_PUBLISH)
        self._remove = redis.register_script(_REMOVE)
        self._snapshot = redis.register_script(_SNAPSHOT)
        self.holds = HoldStore(redis)

    async def publish(self, *, post_id: str, source: str, post_json: bytes, kind: str,
                      lat: float, lon: float, expires_ts: float, shop_id: str, raw: bytes,
                      edit: bool = False, opening: bytes = b"",
                      local: bool = False) -> str | None:
        """Make a post live (or replace it) and append it to the feed; the feed id.

        None when nothing was published: the post was withdrawn, or it is an edit of a
        post no longer live. Publishing the same source entry twice changes nothing.
        `opening`: the encoded OpeningOverride of a shopkeeper's opening_change post, kept
        beside the post in the same script so the shop's open state cannot disagree with it.
        `local`: it names a producer within STREETFEED_LOCAL_KM (what `local=1` keeps); an
        edit that ends that still reaches local subscribers (`was_local`), which hold the card.
        """
        keys_, args = self._publish_call(Publication(
            post_id=post_id, source=source, post_json=post_json, kind=kind, lat=lat, lon=lon,
            expires_ts=expires_ts, shop_id=shop_id, raw=raw, edit=edit, opening=opening,
            local=local), group="")
        result = await self._publish(keys=keys_, args=args)
        return None if result is None else text(result)

    async def publish_many(self, items: Sequence[Publication], *, group: str,
                           also_ack: Sequence[bytes] = ()) -> list[str | Exception | None]:
        """Publish a batch read from the `in` stream by `group`, in order, in one round
        trip: each script acknowledges its own source entry, and `also_ack` (entries that
        publish nothing: dropped, parked) are acknowledged after them. What each item came
        to, as `publish` says it, or the error of a script that failed (its entry is left
        pending)."""
        stream = keys.in_stream(self.region)
        replies, acked = await self._in_one_round_trip(
            self._publish, [self._publish_call(item, group=group) for item in items],
            (lambda pipe: pipe.xack(stream, group, *also_ack)) if also_ack else None)
        if acked and isinstance(acked[-1], Exception):
            raise acked[-1]
        return [r if r is None or isinstance(r, Exception) else text(r) for r in replies]

    async def _in_one_round_trip(
            self, script: AsyncScript, calls: Sequence[tuple[list[str], list[EncodableT]]],
            then: Callable[[Pipeline], object] | None = None) -> tuple[list[Any], list[Any]]:
        """Each call of `script` (EVALSHA), then the commands `then` adds, in one pipeline;
        the replies of the calls and of `then`'s, errors as values. redis-py's own pipeline
        scripts would add a SCRIPT EXISTS round trip each time. If the server lost its
        scripts (a restart, SCRIPT FLUSH), nothing or a prefix of the calls ran: each again
        one by one, which loads the script (a call that did run changes nothing the second
        time: publish and remove are idempotent), then `then`'s commands."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys_, args in calls:
                pipe.execute_command("EVALSHA", script.sha, len(keys_), *keys_, *args)
            if then is not None:
                then(pipe)
            replies = await pipe.execute(raise_on_error=False)
        if not any(isinstance(r, NoScriptError) for r in replies):
            return replies[:len(calls)], replies[len(calls):]
        replies = []
        for keys_, args in calls:
            try:
                replies.append(await script(keys=keys_, args=args))
            except ResponseError as exc:
                replies.append(exc)
        if then is None:
            return replies, []
        async with self.redis.pipeline(transaction=False) as pipe:
            then(pipe)
            return replies, await pipe.execute(raise_on_error=False)

    def _publish_call(self, p: Publication, *, group: str) -> tuple[list[str], list[EncodableT]]:
        r = self.region
        entry = FeedEntry(type="post", id=p.post_id, kind=p.kind, lat=p.lat, lon=p.lon,
                          post=msgspec.Raw(p.post_json), edit=p.edit, local=p.local)
        was_local = (b"" if p.local or not p.edit
                     else _encode(msgspec.structs.replace(entry, was_local=True)))
        return ([keys.post(r, p.post_id), keys.active_geo(r), keys.expiry_zset(r),
                 keys.shop_posts(r, p.shop_id), keys.feed_stream(r), keys.withdrawn(r, p.post_id),
                 keys.openings(r, p.shop_id), keys.opening_shops(r), keys.openings_version(r),
                 keys.in_stream(r)],
                [p.post_id, p.source, p.post_json, repr(p.lat), repr(p.lon), repr(p.expires_ts),
                 p.shop_id, p.kind, self.feed_maxlen, _encode(entry), p.raw,
                 "1" if p.edit else "0", p.opening, "1" if p.local else "0", was_local,
                 self.feed_retention_ms, keys.shop_changes_channel(), group])

    async def remove(self, post_id: str, why: Literal["expired", "withdrawn"], *,
                     now_ts: float, shop_id: str = "") -> str | None:
        """Take a post off the street; the tombstone's feed id, or None if nothing changed.

        An expiry only applies once the post's own expiry time has passed, so a job
        that runs early or for an outdated expiry time is harmless.
        """
        keys_, args = self._remove_call(post_id, why, now_ts=now_ts, shop_id=shop_id)
        result = await self._remove(keys=keys_, args=args)
        if result is None:
            return None
        # Wherever a post ends (withdrawn by its shop, the operator or the opening rules,
        # or expired), what was asked of it and not answered is declined. A crash between
        # the two leaves them to their own time (the scheduler's expiry).
        await self.holds.post_ended(self.region, post_id, datetime.fromtimestamp(now_ts, UTC))
        return text(result)

    async def expire_many(self, post_ids: Sequence[str], *, now_ts: float) -> int:
        """`remove(post_id, "expired")` for each, in one round trip for all (midnight ends
        a day's posts at once: one by one, a country's took minutes); how many ended."""
        if not post_ids:
            return 0
        replies, _ = await self._in_one_round_trip(self._remove, [
            self._remove_call(post_id, "expired", now_ts=now_ts) for post_id in post_ids])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        ended = [post_id for post_id, reply in zip(post_ids, replies, strict=True)
                 if reply is not None]
        await self.holds.posts_ended(self.region, ended, datetime.fromtimestamp(now_ts, UTC))
        return len(ended)

    def _remove_call(self, post_id: str, why: Literal["expired", "withdrawn"], *,
                     now_ts: float, shop_id: str = "") -> tuple[list[str], list[EncodableT]]:
        r = self.region
        return ([keys.post(r, post_id), keys.active_geo(r), keys.expiry_zset(r),
                 keys.feed_stream(r), keys.withdrawn(r, post_id), keys.openings_version(r)],
                [post_id, why, repr(now_ts), self.feed_maxlen, shop_id,
                 keys.shop_posts(r, ""), self.withdrawn_ttl_s, keys.openings(r, ""),
                 self.feed_retention_ms, keys.shop_changes_channel()])

    async def snapshot(self, lat: float, lon: float, radius_m: float, limit: int) -> Snapshot:
        # Shops only exist within GEO's latitudes: search from the nearest such point, wider
        # by the distance moved (the caller keeps only what is truly within its radius).
        clamped = max(-GEO_LAT_MAX, min(GEO_LAT_MAX, lat))
        if clamped != lat:
            radius_m += haversine_m(lat, lon, clamped, lon)
            lat = clamped
        r = self.region
        raw = await self._snapshot(keys=[keys.active_geo(r), keys.feed_stream(r)],
                                   args=[repr(lon), repr(lat), repr(radius_m), limit,
                                         keys.post(r, "")])
        posts = [LivePost(id=text(item[0]), distance_m=float(item[1]), json=bytes(item[2]),
                          feed_id=text(item[3]), expires_ts=float(item[4]), kind=text(item[5]),
                          lat=float(item[6]), lon=float(item[7]), local=text(item[8]) == "1")
                 for item in raw[1:]]
        return Snapshot(last_id=text(raw[0]), posts=posts)

    async def due_for_expiry(self, now_ts: float, limit: int = 500) -> list[str]:
        ids = await self.redis.zrangebyscore(keys.expiry_zset(self.region), "-inf", now_ts,
                                             start=0, num=limit)
        return [text(i) for i in ids]


