"""Profile change -> the shop's live posts published again, at most once per interval.

Where it sits: `PATCH /api/v1/shops/{id}` (or `streetfeed shops update`) changes the
shop record; the enricher joins the record into each post as it publishes it; so a
change reaches the cards by appending each live post to the `in` stream again (an edit
with the same body). That is one frame per live post to every socket nearby: a shop
renaming itself fifty times a minute must not send fifty per post. The first change
after a quiet interval (`profile_republish_interval_s`, a minute) goes out at once;
later ones within the interval are folded into one republish at its end. The enricher
reads the record when it publishes, so the latest profile wins and none is lost: a card
names the shop as it is within one interval (plus settings.republish_poll_s).

State, per region (one hash tag, so each script touches one Cluster slot), in Redis so
that every process shares it and none holds it alone:
- keys.republished(region, shop): when the shop was last republished (ms), expiring
  after the interval: while it exists, a change waits;
- keys.republish_due(region): shops with a folded change, scored by when it may go;
- keys.republish_claims(region): shops being republished, scored by when the claim
  lapses: a process that dies mid-way leaves the claim to lapse, one interval later
  (so still at most once per interval), and another process republishes then.
Every web process runs `Republisher.run`, which republishes the shops whose turn came;
taking a claim is one script, so one process does each.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from redis.asyncio import Redis

from rules.clock import Clock
from runtime.settings import Settings
from schemas.posts import RawPost
from schemas.shops import ShopRecord
from services.supervision import sleep_or_stop
from storage import keys
from storage.inbox import Inbox
from storage.live import shop_live_posts
from storage.redis_conn import text
from storage.shops import decode_record

__all__ = ["Republisher"]

log = logging.getLogger("streetfeed.republish")


_decode_raw = msgspec.json.Decoder(RawPost).decode

# Scores and leases are integer milliseconds, written with %d: Lua numbers are doubles,
# and a plain tostring could turn a timestamp into 1.7e+12.
_CHANGED = """
-- KEYS: republished, due, claims; ARGV: shop id, now_ms, interval_ms
-- Returns a lease (> 0): republish now, under this claim; or 0: folded into the
-- republish due at the end of the current interval.
local now, interval = tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], string.format('%d', now + interval), ARGV[1])
  return now + interval
end
local last = tonumber(redis.call('GET', KEYS[1]) or ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', string.format('%d', last + interval), ARGV[1])
return 0
"""

_CLAIM = """
-- KEYS: due, claims, republished; ARGV: shop id, now_ms, interval_ms
-- A lease if the shop's turn came (a folded change due, or a claim that lapsed), else 0.
local now, interval = tonumber(ARGV[2]), tonumber(ARGV[3])
local function ready(key)
  local score = redis.call('ZSCORE', key, ARGV[1])
  return score and tonumber(score) <= now
end
if not (ready(KEYS[1]) or ready(KEYS[2])) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], string.format('%d', now + interval), ARGV[1])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return now + interval
"""

_RELEASE = """
-- KEYS: claims; ARGV: shop id, lease. Only our own claim: a lapsed one may be another's.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


def _now_ms() -> int:
    # Wall time, as the rate limiter uses: shared by every process through Redis.
    return int(time.time() * 1000)


async def republish_live_posts(redis: Redis, record: ShopRecord, clock: Clock,
                               settings: Settings) -> int:
    """Append every live post of the shop again, so that the enricher joins its current
    profile (name, category, address) into each card."""
    inbox = Inbox(redis, record.region, settings)
    count = 0
    for _, (stored,) in await shop_live_posts(redis, record.region, record.id, "raw"):
        if stored is None:
            continue
        original = _decode_raw(stored)
        # The original with only what a republish changes: whatever else a raw post
        # carries (photos, producers, and fields added later) is kept without naming it.
        await inbox.append(msgspec.structs.replace(
            original, accepted_at=clock.now(), edit=True,
            posted_at=original.posted_at or original.accepted_at))
        count += 1
    return count


class Republisher:
    """Profile changes of shops turned into republished posts, at most once per interval."""

    def __init__(self, redis: Redis, settings: Settings, clock: Clock) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.interval_ms = max(1, int(settings.profile_republish_interval_s * 1000))
        self._changed = redis.register_script(_CHANGED)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def profile_changed(self, record: ShopRecord) -> bool:
        """Call after the shop record changed (it is stored). True if its posts were
        republished now; False if the change waits for the end of the interval."""
        region = record.region
        lease = int(await self._changed(
            keys=[keys.republished(region, record.id), keys.republish_due(region),
                  keys.republish_claims(region)],
            args=[record.id, _now_ms(), self.interval_ms]))
        if not lease:
            return False
        await self._republish(region, record.id, lease)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Each web process: republish the folded changes whose turn came."""
        while not stop.is_set():
            await self.run_due()
            if await sleep_or_stop(stop, self.settings.republish_poll_s):
                return

    async def run_due(self) -> int:
        """One look over every region; how many shops this process republished."""
        done = 0
        for region in self.settings.region_names:
            now = _now_ms()
            due = await self.redis.zrangebyscore(keys.republish_due(region), "-inf", now,
                                                 start=0, num=self.settings.republish_batch)
            lapsed = await self.redis.zrangebyscore(keys.republish_claims(region), "-inf", now,
                                                    start=0, num=self.settings.republish_batch)
            for shop_id in sorted({text(s) for s in (*due, *lapsed)}):
                lease = int(await self._claim(
                    keys=[keys.republish_due(region), keys.republish_claims(region),
                          keys.republished(region, shop_id)],
                    args=[shop_id, _now_ms(), self.interval_ms]))
                if lease:
                    await self._republish(region, shop_id, lease)
                    done += 1
        return done

    async def _republish(self, region: str, shop_id: str, lease: int) -> None:
        # The record as it is now: a change made since the claim is in it too.
        stored = await self.redis.get(keys.shop(shop_id))
        record = None if stored is None else decode_record(stored)
        if record is not None and not record.disabled and record.region == region:
            count = await republish_live_posts(self.redis, record, self.clock, self.settings)
            log.info("shop %s: profile change republished to %d live posts", shop_id, count)
        # Released only once done: if this process dies first, the claim lapses and
        # another process republishes then.
        await self._release(keys=[keys.republish_claims(region)], args=[shop_id, lease])
