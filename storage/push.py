"""Subscriptions to alerts for followed shops, and the alerts waiting their turn (Web Push,
DESIGN.md section 9). Every key is under the `{push}` hash tag (storage.keys): each step
below is one script over one Cluster slot.

What is kept of a subscription: its push endpoint and the browser's keys, the shops
followed, the kinds wanted, quiet hours and a time zone, the SHA-256 of its secret and
when it was made and last changed (`PushRecord`); per shop, the set of its followers;
per subscription, the posts waiting to be alerted and what was alerted in the last two
days (shop and post ids, when). No position, no address, no user agent. A subscription
not changed for settings.push_subscription_ttl_s expires with everything of it.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from schemas.limits import PUSH_DAY_S, PUSH_WAITING_MAX
from schemas.push import PushRecord, Waiting
from storage import keys
from storage.redis_conn import async_reply, text

__all__ = ["Claimed", "PushStore", "ensure_groups"]

_decode_record = msgspec.json.Decoder(PushRecord).decode
_decode_waiting = msgspec.json.Decoder(Waiting).decode
_encode = msgspec.json.Encoder().encode
# What was alerted is remembered this long: the day's limit looks one day back, and a post
# lives at most about a day (a flash offer ends within 24 h), so a late redelivery of its
# feed entry still finds it sent.
_SENT_KEEP_S = 2 * PUSH_DAY_S

# Forget a subscription: its record, endpoint name, follows, waiting alerts and memory.
_FORGET = """
local function forget(prefix, id)
  local raw = redis.call('GET', prefix .. 'sub:' .. id)
  if raw then
    local r = cjson.decode(raw)
    for _, shop in ipairs(r.shops) do redis.call('SREM', prefix .. 'shop:' .. shop, id) end
  end
  redis.call('DEL', prefix .. 'sub:' .. id, prefix .. 'waiting:' .. id, prefix .. 'sent:' .. id)
  redis.call('ZREM', prefix .. 'due', id)
  return raw
end
"""

_SUBSCRIBE = _FORGET + """
-- KEYS: record, endpoint name; ARGV: prefix, id, record JSON, ttl, shop ids...
local old = redis.call('GET', KEYS[2])
if old and old ~= ARGV[2] then forget(ARGV[1], old) end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
for i = 5, #ARGV do redis.call('SADD', ARGV[1] .. 'shop:' .. ARGV[i], ARGV[2]) end
return old
"""

_UPDATE = """
-- KEYS: record, endpoint name, waiting, due; ARGV: prefix, id, record JSON, ttl, now,
--       shop ids...
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
for _, shop in ipairs(cjson.decode(raw).shops) do
  redis.call('SREM', ARGV[1] .. 'shop:' .. shop, ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
for i = 6, #ARGV do redis.call('SADD', ARGV[1] .. 'shop:' .. ARGV[i], ARGV[2]) end
-- What waits is looked at again now: quiet hours turned off (or another time zone) may
-- let it go at once, shops no longer followed drop theirs.
if redis.call('HLEN', KEYS[3]) > 0 then redis.call('ZADD', KEYS[4], 'LT', ARGV[5], ARGV[2]) end
return 1
"""

_DELETE = _FORGET + """
-- KEYS: endpoint name; ARGV: prefix, id
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
if forget(ARGV[1], ARGV[2]) then return 1 end
return 0
"""

_ENQUEUE = """
-- KEYS: record, waiting, sent, due; ARGV: id, post id, Waiting JSON, sent member, now,
--       most waiting, keep (s)
-- 0: no such subscription (any more); 1: queued; 2: sent or queued already; 3: full
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('ZSCORE', KEYS[3], ARGV[4]) then return 2 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 2 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then return 3 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[4], 'LT', ARGV[5], ARGV[1])
return 1
"""

_CLAIM = """
-- KEYS: due; ARGV: now, lease end, count -> {id, lease end, ...}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""

_MARK_SENT = """
-- KEYS: waiting, sent; ARGV: post id, sent member, now, forget before, keep (s)
-- Recorded before the request goes: at most once, even if the pusher dies mid-send.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""

_REQUEUE = """
-- KEYS: record, waiting, sent, due; ARGV: id, post id, Waiting JSON, sent member, when
-- A send that failed for now: it waits again, and does not count as sent.
redis.call('ZREM', KEYS[3], ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[4], 'LT', ARGV[5], ARGV[1])
return 1
"""

_SETTLE = """
-- KEYS: waiting, due; ARGV: id, lease end the claim set, next ('' = nothing waits),
--       dropped post ids...
-- The next look is set only if nothing was queued meanwhile (ENQUEUE lowered the score).
for i = 4, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""


class Claimed(msgspec.Struct, frozen=True):
    id: str
    lease_ts: float


def _sent_member(shop_id: str, post_id: str) -> str:
    return f"{shop_id} {post_id}"


async def ensure_groups(redis: Redis, regions: list[str]) -> None:
    """The pushers' consumer group on each region's feed stream, from now on: created by
    the first subscription (web) or pusher, whichever comes first, so that posts published
    while no pusher runs wait for it. Never from the stream's start: the first pusher of a
    deployment must not alert the day's backlog."""
    for region in regions:
        try:
            await redis.xgroup_create(keys.feed_stream(region), keys.PUSHER_GROUP, id="$",
                                      mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class PushStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._subscribe = redis.register_script(_SUBSCRIBE)
        self._update = redis.register_script(_UPDATE)
        self._delete = redis.register_script(_DELETE)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._mark_sent = redis.register_script(_MARK_SENT)
        self._requeue = redis.register_script(_REQUEUE)
        self._settle = redis.register_script(_SETTLE)

    # --- Subscriptions (the web side) -------------------------------------------------

    async def subscribe(self, record: PushRecord, ttl_s: int) -> str | None:
        """Keep `record`; a subscription of the same endpoint is replaced (its id, else
        None)."""
        old = await self._subscribe(
            keys=[keys.push_subscription(record.id), keys.push_endpoint(record.endpoint)],
            args=[keys.PUSH_PREFIX, record.id, _encode(record), ttl_s, *record.shops])
        return None if old is None else text(old)

    async def get(self, sub_id: str) -> PushRecord | None:
        raw = await self.redis.get(keys.push_subscription(sub_id))
        return None if raw is None else _decode_record(raw)

    async def update(self, record: PushRecord, ttl_s: int, now_ts: float) -> bool:
        """Replace the record and its follows, and have what waits looked at again at
        `now_ts` (False: it is gone)."""
        done = await self._update(
            keys=[keys.push_subscription(record.id), keys.push_endpoint(record.endpoint),
                  keys.push_waiting(record.id), keys.push_due()],
            args=[keys.PUSH_PREFIX, record.id, _encode(record), ttl_s, repr(now_ts),
                  *record.shops])
        return bool(done)

    async def delete(self, record: PushRecord) -> bool:
        done = await self._delete(keys=[keys.push_endpoint(record.endpoint)],
                                  args=[keys.PUSH_PREFIX, record.id])
        return bool(done)

    # --- The pusher -------------------------------------------------------------------

    async def followers(self, shop_id: str) -> list[str]:
        members = await async_reply(self.redis.smembers(keys.push_shop(shop_id)))
        return sorted(text(m) for m in members)

    async def records(self, sub_ids: list[str]) -> list[PushRecord | None]:
        """Each subscription's record, None for one expired or deleted (one MGET: the keys
        share a slot)."""
        raws = await self.redis.mget([keys.push_subscription(s) for s in sub_ids])
        return [None if raw is None else _decode_record(raw) for raw in raws]

    async def unfollow(self, shop_id: str, sub_id: str) -> None:
        """Drop an expired subscription's follow."""
        await async_reply(self.redis.srem(keys.push_shop(shop_id), sub_id))

    async def enqueue(self, sub_id: str, waiting: Waiting, now_ts: float) -> int:
        """0: no such subscription; 1: queued; 2: alerted or queued already; 3: full."""
        result = await self._enqueue(
            keys=[keys.push_subscription(sub_id), keys.push_waiting(sub_id),
                  keys.push_sent(sub_id), keys.push_due()],
            args=[sub_id, waiting.post_id, _encode(waiting),
                  _sent_member(waiting.shop_id, waiting.post_id), repr(now_ts),
                  PUSH_WAITING_MAX, _SENT_KEEP_S])
        return int(result)

    async def claim(self, now_ts: float, lease_s: float, count: int) -> list[Claimed]:
        """Subscriptions whose turn came, each leased to this pusher for `lease_s` (another
        pusher takes it over after that if this one died)."""
        lease = now_ts + lease_s
        ids = await self._claim(keys=[keys.push_due()], args=[repr(now_ts), repr(lease), count])
        return [Claimed(text(i), lease) for i in ids]

    async def state(self, sub_id: str) -> tuple[PushRecord | None, list[Waiting],
                                                 list[tuple[str, float]]]:
        """The record, what waits, and (shop id, when) of what was alerted."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.push_subscription(sub_id))
            pipe.hvals(keys.push_waiting(sub_id))
            pipe.zrange(keys.push_sent(sub_id), 0, -1, withscores=True)
            raw, waiting, sent = await pipe.execute()
        record = None if raw is None else _decode_record(raw)
        return (record, [_decode_waiting(w) for w in waiting],
                [(text(m).partition(" ")[0], float(ts)) for m, ts in sent])

    async def forget(self, sub_id: str) -> None:
        """Everything of a subscription whose record is gone, or that its push service
        says is gone (404/410)."""
        record = await self.get(sub_id)
        if record is not None:
            await self.delete(record)
            return
        await self.redis.delete(keys.push_waiting(sub_id), keys.push_sent(sub_id))
        await async_reply(self.redis.zrem(keys.push_due(), sub_id))

    async def mark_sent(self, sub_id: str, waiting: Waiting, now_ts: float) -> bool:
        """Take the alert out of the queue and remember it as sent, before sending (False:
        another pusher took it)."""
        done = await self._mark_sent(
            keys=[keys.push_waiting(sub_id), keys.push_sent(sub_id)],
            args=[waiting.post_id, _sent_member(waiting.shop_id, waiting.post_id),
                  repr(now_ts), repr(now_ts - _SENT_KEEP_S), _SENT_KEEP_S])
        return bool(done)

    async def requeue(self, sub_id: str, waiting: Waiting) -> None:
        """Put back an alert whose send failed for now, to go at `waiting.not_before_ts`."""
        await self._requeue(
            keys=[keys.push_subscription(sub_id), keys.push_waiting(sub_id),
                  keys.push_sent(sub_id), keys.push_due()],
            args=[sub_id, waiting.post_id, _encode(waiting),
                  _sent_member(waiting.shop_id, waiting.post_id), repr(waiting.not_before_ts)])

    async def settle(self, claimed: Claimed, next_ts: float | None,
                     dropped: list[str]) -> None:
        await self._settle(keys=[keys.push_waiting(claimed.id), keys.push_due()],
                           args=[claimed.id, repr(claimed.lease_ts),
                                 "" if next_ts is None else repr(next_ts), *dropped])
