"""GET /api/v1/shops/{id}: a shop's public profile with its producers, cached in the process.

Screens and pages fetch it often (1,000 a minute in the busy benchmark), and computing it
costs four round trips (record, own opening posts, producers, holds today) and the opening
state over the coming week (~110 us with weekly hours), on the loop that also writes every
live frame. So each web process keeps the answer, encoded, per shop:

- until its opening state may change (rules.shops.profile_valid_until: its next_change,
  an own opening post starting or ending) or the shop's day ends where "held today" is
  counted (rules.expiry.end_of_local_day), on the app's clock;
- dropped at once on every shop write: every write announces the shop on the
  shop-changes channel (storage.shops.announce_change: record, hours, disabling, token,
  producers, each step of a hold; storage.live: an own opening post made live, changed
  or withdrawn), which feed.presence follows in every web process and passes on (`forget`);
- kept only while that channel is heard without a gap (`heard`: a number that moves at
  each subscription and each loss, None while not subscribed): a subscription lost
  (Redis restarted) drops the whole cache, and nothing is kept until it is heard again.

A profile read while a write of its shop was announced is answered but not kept: it may
be older than the write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis

from rules.clock import Clock, ManualClock
from rules.expiry import end_of_local_day
from rules.shops import profile_of, profile_valid_until
from schemas.hours import OpeningOverride
from schemas.shops import ShopProfile, ShopProfileWithProducers, ShopRecord
from services.holds import Holds
from services.producers import Producers
from storage import openings, shops

__all__ = ["ProfileCache", "profile_now"]

_encode = msgspec.json.Encoder().encode


async def profile_now(redis: Redis, record: ShopRecord, now: datetime
                      ) -> tuple[ShopProfile, list[OpeningOverride]]:
    """The profile at `now`, with the shop's own opening_change posts overriding its hours;
    and those posts (what else may change it)."""
    overrides = await openings.of_shop(redis, record.region, record.id)
    return profile_of(record, ManualClock(now), overrides), overrides


class ProfileCache:
    """One per web process (AppState.profiles)."""

    def __init__(self, redis: Redis, clock: Clock, producers: Producers, holds: Holds,
                 heard: Callable[[], int | None]) -> None:
        self.redis = redis
        self.clock = clock
        self.producers = producers
        self.holds = holds
        self.heard = heard
        # shop id -> (encoded profile, POSIX time it stops being true, `heard` then).
        self._entries: dict[str, tuple[bytes, float, int]] = {}
        # Writes announced per shop, and every shop at once, since start: a read that saw
        # one go by is not kept.
        self._writes: dict[str, int] = {}
        self._forgot_all = 0
        # Profiles computed since start (tests read it).
        self.computed = 0

    def forget(self, shop_id: str | None) -> None:
        """A shop was written (None: any may have been): feed.presence calls this."""
        if shop_id is None:
            self._entries.clear()
            self._forgot_all += 1
        else:
            self._entries.pop(shop_id, None)
            self._writes[shop_id] = self._writes.get(shop_id, 0) + 1

    async def profile(self, shop_id: str) -> bytes:
        """The encoded ShopProfileWithProducers of an enabled shop; 404 unknown_shop."""
        heard = self.heard()
        now = self.clock.now()
        entry = self._entries.get(shop_id)
        if entry is not None and entry[2] == heard and now.timestamp() < entry[1]:
            return entry[0]
        seen = (heard, self._forgot_all, self._writes.get(shop_id, 0))
        body, until = await self._compute(shop_id, now)
        if heard is not None and seen == (self.heard(), self._forgot_all,
                                          self._writes.get(shop_id, 0)):
            self._entries[shop_id] = (body, until, heard)
        return body

    async def _compute(self, shop_id: str, now: datetime) -> tuple[bytes, float]:
        self.computed += 1
        record = await shops.require_shop(self.redis, shop_id)
        profile, overrides = await profile_now(self.redis, record, now)
        body = _encode(ShopProfileWithProducers(
            **msgspec.structs.asdict(profile),
            producers=await self.producers.of_shop(record),
            held_today=await self.holds.held_today(record)))
        until = min(profile_valid_until(record, profile, overrides, now),
                    end_of_local_day(now, ZoneInfo(self.holds.zone(record))).timestamp())
        return body, until
