"""Holds in Redis (keys in storage.keys; DESIGN.md section 9 "Hold it for me").

A hold lives in its post's region, beside the post, so that taking the last unit and
recording the hold is one script: two passers-by asking for the last one at once get one
hold and one `sold_out`, whatever the number of web processes. Every change of status is
one script too, keyed on the status it finds (rules.holds.ACTIONS), so a shop's "accept"
and the scheduler's "expire" racing each other leave one answer, and each unit is given
back once. Nothing here uses MULTI or WATCH, which a cluster client does not offer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import msgspec
from redis.asyncio import Redis

from rules.holds import ACTIONS, END_REASONS, ENDINGS, HELD_FROM, Action, left_of, releases
from schemas.holds import EndReason, HoldRecord, HoldStatus
from schemas.limits import HOLD_KEEP_AFTER_END_S
from storage import keys
from storage.redis_conn import async_reply, text
from storage.shops import announce_change

__all__ = ["AddressLimits", "Changed", "HoldStore", "StoredHold", "Taken"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(HoldRecord).decode

# How long the per-address set of open holds is kept after its last change: longer than
# any hold is open (HOLD_MINUTES_MAX), and the address hash changes daily anyway.
_ADDRESS_TTL_S = 2 * 24 * 3600
_TODAY_TTL_S = 2 * 24 * 3600

_TAKE = """
-- KEYS: post, stock, hold, shop open, post open, due, shop codes, in stream,
--       the address's open holds today and yesterday, its takes today and yesterday
-- ARGV: hold id, record JSON, code, expires (unix s), most open holds per address,
--       address TTL, post id, shop id, now (unix s), most takes per address per window,
--       the window's start (unix s), the takes' TTL
-- Refusals first, and each before anything is counted: a sold-out or withdrawn post
-- costs the asker none of their allowance.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', ''} end
local quantity = tonumber(redis.call('HGET', KEYS[2], 'quantity') or '0')
if quantity <= 0 then return {'not_holdable', ''} end
if tonumber(redis.call('HGET', KEYS[2], 'taken') or '0') >= quantity then
  return {'sold_out', ''}
end
-- An address's name changes at midnight (storage.ratelimit): yesterday's counts too.
if redis.call('SCARD', KEYS[9]) + redis.call('SCARD', KEYS[10]) >= tonumber(ARGV[5]) then
  return {'address_full', ''}
end
local since = '(' .. ARGV[11]
if redis.call('ZCOUNT', KEYS[11], since, '+inf')
    + redis.call('ZCOUNT', KEYS[12], since, '+inf') >= tonumber(ARGV[10]) then
  -- The earliest take still in the window: when it leaves, one more may be taken.
  local oldest = nil
  for _, k in ipairs({KEYS[11], KEYS[12]}) do
    local first = redis.call('ZRANGEBYSCORE', k, since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if first[2] and (oldest == nil or tonumber(first[2]) < oldest) then
      oldest = tonumber(first[2])
    end
  end
  return {'hourly', tostring(oldest)}
end
if redis.call('SISMEMBER', KEYS[7], ARGV[3]) == 1 then return {'code_taken', ''} end
redis.call('HINCRBY', KEYS[2], 'taken', 1)
redis.call('HSET', KEYS[3], 'json', ARGV[2], 'status', 'pending')
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[7], ARGV[3])
redis.call('SADD', KEYS[9], ARGV[1])
redis.call('EXPIRE', KEYS[9], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', ARGV[11])
redis.call('ZADD', KEYS[11], ARGV[9], ARGV[1])
redis.call('EXPIRE', KEYS[11], ARGV[12])
-- The street is told the units left in the same step (a refresh entry the enricher
-- publishes the post again for): a crash after the take cannot leave `left` stale.
redis.call('XADD', KEYS[8], '*', 'refresh', ARGV[7], 'shop', ARGV[8])
return {'ok', ''}
"""

_CHANGE = """
-- KEYS: hold, stock, shop open, post open, due, shop codes, address open, in stream,
--       [the shop's holds of today: only when the change may count as held]
-- ARGV: statuses it applies to (comma-separated), new status, 1 if it ends the hold,
--       1 if it gives the unit back, ended_at (RFC 3339), hold id, code, keep TTL, post id,
--       shop id, statuses from which it counts as held today (comma-separated, or ''),
--       today's TTL, why it ends ('' unless it says), the statuses it says so from
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'unknown', ''} end
local applies = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == status then applies = true end
end
if not applies then return {'stays', status} end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[13] ~= '' then
  for s in string.gmatch(ARGV[14], '[^,]+') do
    if s == status then redis.call('HSET', KEYS[1], 'reason', ARGV[13]) end
  end
end
for s in string.gmatch(ARGV[11], '[^,]+') do
  if s == status then
    redis.call('INCR', KEYS[9])
    redis.call('EXPIRE', KEYS[9], ARGV[12])
  end
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'ended_at', ARGV[5])
  if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 1
      and tonumber(redis.call('HGET', KEYS[2], 'taken') or '0') > 0 then
    redis.call('HINCRBY', KEYS[2], 'taken', -1)
    redis.call('XADD', KEYS[8], '*', 'refresh', ARGV[9], 'shop', ARGV[10])
  end
  redis.call('ZREM', KEYS[3], ARGV[6])
  redis.call('SREM', KEYS[4], ARGV[6])
  redis.call('ZREM', KEYS[5], ARGV[6])
  redis.call('SREM', KEYS[6], ARGV[7])
  redis.call('SREM', KEYS[7], ARGV[6])
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
return {'ok', status}
"""

# The enricher, as it publishes a post: what it offers now, and what is taken.
_STOCK = """
-- KEYS: stock; ARGV: quantity (0: no more holds), minutes, TTL
if ARGV[1] == '0' and redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
redis.call('HSET', KEYS[1], 'quantity', ARGV[1], 'minutes', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {tonumber(ARGV[1]), tonumber(redis.call('HGET', KEYS[1], 'taken') or '0')}
"""


class Taken(Enum):
    OK = "ok"
    GONE = "gone"  # the post is not live
    NOT_HOLDABLE = "not_holdable"
    SOLD_OUT = "sold_out"
    ADDRESS_FULL = "address_full"  # this address has as many open holds as it may
    HOURLY = "hourly"  # this address took as many as it may within the window
    CODE_TAKEN = "code_taken"  # another open hold of the shop has this code: draw again


class Changed(Enum):
    OK = "ok"
    STAYS = "stays"  # the action does not apply to the status it found
    UNKNOWN = "unknown"  # no such hold (or ended long ago)


@dataclass(frozen=True, slots=True)
class AddressLimits:
    """What one address may have: open holds at once, holds taken within a sliding window."""

    most_open: int
    most_per_window: int
    window_s: int = 3600


@dataclass(frozen=True, slots=True)
class StoredHold:
    record: HoldRecord
    status: HoldStatus
    ended_at: datetime | None
    reason: EndReason | None = None


_STATUSES: dict[str, HoldStatus] = {s: s for s in ("pending", "accepted", *ENDINGS)}
_REASONS: dict[str, EndReason] = {r: r for r, _ in END_REASONS.values()}
_FIELDS = ["json", "status", "ended_at", "reason"]


def _ended_keys(region: str, post_id: str) -> tuple[str, str]:
    """What goes when a post ends: its stock and the set of its open holds."""
    return keys.hold_stock(region, post_id), keys.post_holds(region, post_id)


def _status(raw: bytes | str) -> HoldStatus:
    return _STATUSES[text(raw)]


def _stored(raw: bytes, status: bytes, ended_at: bytes | None,
            reason: bytes | None) -> StoredHold:
    return StoredHold(record=_decode(raw), status=_status(status),
                      ended_at=None if ended_at is None
                      else datetime.fromisoformat(text(ended_at)),
                      reason=None if reason is None else _REASONS.get(text(reason)))


def _reason_args(action: Action) -> tuple[str, str]:
    reason, from_statuses = END_REASONS.get(action, ("", ()))
    return reason, ",".join(from_statuses)


class HoldStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._take = redis.register_script(_TAKE)
        self._change = redis.register_script(_CHANGE)
        self._stock = redis.register_script(_STOCK)

    async def take(self, record: HoldRecord, *, yesterday: str, now: float,
                   limits: AddressLimits) -> tuple[Taken, int]:
        """Take a unit of the post for a new pending hold, if one is left and the address
        (`record.address`, today's name; `yesterday`, its name of the day before) is within
        its limits, and ask the enricher to publish the post again with it (one step).
        With Taken.HOURLY, the seconds until the address may take another."""
        r, post_id, shop_id, today = record.region, record.post.id, record.shop.id, record.address
        window = limits.window_s
        outcome, oldest = await self._take(
            keys=[keys.post(r, post_id), keys.hold_stock(r, post_id), keys.hold(r, record.id),
                  keys.shop_holds(r, shop_id), keys.post_holds(r, post_id), keys.holds_due(r),
                  keys.shop_hold_codes(r, shop_id), keys.in_stream(r),
                  keys.address_holds(r, today), keys.address_holds(r, yesterday),
                  keys.address_hold_times(r, today), keys.address_hold_times(r, yesterday)],
            args=[record.id, _encode(record), record.code, int(record.expires_at.timestamp()),
                  limits.most_open, _ADDRESS_TTL_S, post_id, shop_id, repr(now),
                  limits.most_per_window, repr(now - window), window + 60])
        taken = Taken(text(outcome))
        if taken is not Taken.HOURLY:
            return taken, 0
        try:
            return taken, max(1, math.ceil(float(text(oldest)) + window - now))
        except ValueError:
            return taken, window

    async def change(self, record: HoldRecord, action: Action, now: datetime,
                     day: str | None = None) -> tuple[Changed, HoldStatus | None]:
        """Apply `action` if the hold's status allows it (a unit given back is published in
        the same step, a hold put aside counted in the shop's holds of `day`, its local
        date, which an action that may count needs); what happened, and the status it
        found (None when the hold is unknown)."""
        applies_to, new = ACTIONS[action]
        r, post_id, shop_id = record.region, record.post.id, record.shop.id
        counted_from = HELD_FROM.get(action, ())
        today: list[str] = []
        if counted_from:
            if day is None:
                raise ValueError(f"{action!r} may count in held today: give the shop's day")
            today = [keys.holds_today(r, shop_id, day)]
        outcome, found = await self._change(
            keys=[keys.hold(r, record.id), keys.hold_stock(r, post_id),
                  keys.shop_holds(r, shop_id), keys.post_holds(r, post_id), keys.holds_due(r),
                  keys.shop_hold_codes(r, shop_id), keys.address_holds(r, record.address),
                  keys.in_stream(r), *today],
            args=[",".join(applies_to), new, "1" if new in ENDINGS else "0",
                  "1" if releases(new) else "0", now.isoformat(), record.id, record.code,
                  HOLD_KEEP_AFTER_END_S, post_id, shop_id, ",".join(counted_from),
                  _TODAY_TTL_S, *_reason_args(action)])
        changed = Changed(text(outcome))
        return changed, None if changed is Changed.UNKNOWN else _status(found)

    async def get(self, region: str, hold_id: str) -> StoredHold | None:
        raw, status, ended_at, reason = await async_reply(self.redis.hmget(
            keys.hold(region, hold_id), _FIELDS))
        if raw is None or status is None:
            return None
        return _stored(raw, status, ended_at, reason)

    async def many(self, region: str, hold_ids: list[str]) -> list[StoredHold]:
        if not hold_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for hold_id in hold_ids:
                pipe.hmget(keys.hold(region, hold_id), _FIELDS)
            rows = await pipe.execute()
        return [_stored(raw, status, ended, reason)
                for raw, status, ended, reason in rows if raw is not None and status is not None]

    async def open_of_shop(self, region: str, shop_id: str) -> list[StoredHold]:
        """The shop's open holds, soonest to expire first."""
        ids = [text(i) for i in await self.redis.zrange(keys.shop_holds(region, shop_id), 0, -1)]
        return [h for h in await self.many(region, ids) if h.status in ("pending", "accepted")]

    async def open_count(self, region: str, post_id: str) -> int:
        """How many holds of the post are open (pending or accepted)."""
        return int(await async_reply(self.redis.scard(keys.post_holds(region, post_id))))

    async def open_of_post(self, region: str, post_id: str) -> list[StoredHold]:
        ids = [text(i) for i in await async_reply(
            self.redis.smembers(keys.post_holds(region, post_id)))]
        return await self.many(region, sorted(ids))

    async def due(self, region: str, now_ts: float, most: int = 500) -> list[str]:
        """Open holds whose time is up (the scheduler expires them)."""
        return [text(i) for i in await self.redis.zrangebyscore(
            keys.holds_due(region), "-inf", now_ts, start=0, num=most)]

    async def stock(self, region: str, post_id: str, quantity: int, minutes: int,
                    ttl_s: int) -> int:
        """Say what a post offers to hold as it is published (quantity 0: nothing more);
        the units left."""
        offered, taken = await self._stock(keys=[keys.hold_stock(region, post_id)],
                                           args=[quantity, minutes, ttl_s])
        return left_of(int(offered), int(taken))

    async def post_ended(self, region: str, post_id: str, now: datetime) -> int:
        """A post was withdrawn or expired: its pending holds are declined (what the shop
        accepted stays kept aside until its time), its stock goes; how many were declined.
        The shop's consoles are told."""
        declined = 0
        shop_id = ""
        for hold in await self.open_of_post(region, post_id):
            shop_id = hold.record.shop.id
            changed, _ = await self.change(hold.record, "post_ended", now)
            declined += changed is Changed.OK
        await self.redis.delete(*_ended_keys(region, post_id))
        if shop_id:
            await announce_change(self.redis, shop_id)
        return declined

    async def posts_ended(self, region: str, post_ids: Sequence[str], now: datetime) -> int:
        """`post_ended` for many posts: which have holds is one round trip, and most have
        none; how many holds were declined."""
        if not post_ids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for post_id in post_ids:
                pipe.scard(keys.post_holds(region, post_id))
            counts = await pipe.execute()
        declined = 0
        quiet = []
        for post_id, count in zip(post_ids, counts, strict=True):
            if count:
                declined += await self.post_ended(region, post_id, now)
            else:
                quiet.append(post_id)
        if quiet:  # their stock, if any was offered
            async with self.redis.pipeline(transaction=False) as pipe:
                for post_id in quiet:
                    pipe.delete(*_ended_keys(region, post_id))
                await pipe.execute()
        return declined

    async def shop_disabled(self, region: str, shop_id: str, now: datetime) -> int:
        """The shop was taken off the service: every open hold of it is declined, accepted
        ones too (nobody is there to hand them over); how many were."""
        declined = 0
        for hold in await self.open_of_shop(region, shop_id):
            changed, _ = await self.change(hold.record, "shop_disabled", now)
            declined += changed is Changed.OK
        return declined

    async def taken_of_shop(self, region: str, shop_id: str) -> dict[str, int]:
        """Units taken (open or collected holds) of each live post of the shop, where any."""
        post_ids = sorted(text(i) for i in await async_reply(
            self.redis.smembers(keys.shop_posts(region, shop_id))))
        if not post_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for post_id in post_ids:
                pipe.hget(keys.hold_stock(region, post_id), "taken")
            values = await pipe.execute()
        return {p: int(v) for p, v in zip(post_ids, values, strict=True) if v and int(v) > 0}

    async def held_today(self, region: str, shop_id: str, day: str) -> int:
        return int(await self.redis.get(keys.holds_today(region, shop_id, day)) or 0)
