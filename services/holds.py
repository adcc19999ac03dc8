"""Holds ("Hold it for me", DESIGN.md section 9): a passer-by asks, the shop answers, the
scheduler ends what time ends. The states are rules.holds'; storage.holds makes each step
one script. After a step that changes the units left, the post is published again through
its region's `in` stream (a refresh entry: the enricher reads the live post and the stock
as it publishes, so every socket in range gets a `post` frame with the new `left`, in order
with the shop's own edits); the shop's consoles are told on the shop-changes channel.
"""

from __future__ import annotations

import logging
import secrets
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from rules.bearer import bearer_secret, new_secret, secret_hash, secret_matches
from rules.clock import Clock
from rules.errors import ApiError, Conflict, InvalidInput, NotFound, RateLimited
from rules.holds import Action, code_from, hold_expires_at
from rules.moderation import Policy, check_hold_name
from runtime import metrics
from runtime.settings import Settings
from schemas.holds import (
    HoldCreated,
    HoldIn,
    HoldPostRef,
    HoldRecord,
    HoldShop,
    HoldView,
    ShopHold,
)
from schemas.limits import HOLD_CODE_LEN
from schemas.posts import FlashOffer, NewArrival, Post
from schemas.shops import ShopRecord
from storage import keys
from storage.holds import AddressLimits, Changed, HoldStore, StoredHold, Taken
from storage.ratelimit import RateLimiter
from storage.redis_conn import REDIS_DOWN
from storage.shops import announce_change, get_shop

__all__ = ["Holds", "hold_view", "shop_hold"]

log = logging.getLogger("streetfeed.holds")

_decode_post = msgspec.json.Decoder(Post).decode
# A code drawn again when another open hold of the shop has it: 25^4 = 390,625 codes
# against a shop's few open holds, so a second draw is rare and a sixth unheard of.
_CODE_DRAWS = 6
# Redis refusing to tell the consoles, however it refuses (see Holds._changed).
_NOT_TOLD: tuple[type[Exception], ...] = (RedisError, *REDIS_DOWN)


def hold_view(hold: StoredHold) -> HoldView:
    r = hold.record
    return HoldView(id=r.id, status=hold.status, code=r.code, name=r.name,
                    created_at=r.created_at, expires_at=r.expires_at, ended_at=hold.ended_at,
                    post=r.post, shop=r.shop,
                    reason=hold.reason if hold.status in ("declined", "expired") else None)


def shop_hold(hold: StoredHold) -> ShopHold:
    r = hold.record
    return ShopHold(id=r.id, status=hold.status, code=r.code, name=r.name,
                    created_at=r.created_at, expires_at=r.expires_at, post=r.post)


def _post_ref(post: NewArrival | FlashOffer) -> HoldPostRef:
    return HoldPostRef(id=post.id, kind=type(post).__struct_config__.tag or "",  # type: ignore[arg-type]
                       title=post.title, price=post.price,
                       discount_pct=post.discount_pct if isinstance(post, FlashOffer) else None)


class Holds:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock, policy: Policy,
                 limiter: RateLimiter) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.policy = policy
        self.limiter = limiter
        self.store = HoldStore(redis)

    # --- The passer-by ------------------------------------------------------------------

    async def _live_post(self, post_id: str) -> tuple[str, Post]:
        """The region and public form of a live post; 410 `post_gone` when none is live."""
        for region in self.settings.region_names:
            raw = await self.redis.hget(keys.post(region, post_id), "json")  # type: ignore[misc]
            if raw is not None:
                return region, _decode_post(raw)
        raise ApiError(f"no live post {post_id!r}: it was withdrawn or has ended",
                       code="post_gone", status=410)

    async def take(self, post_id: str, new: HoldIn, address: str) -> HoldCreated:
        rejection = check_hold_name(new.name, self.policy)
        if rejection is not None:
            raise InvalidInput(rejection.message, code=rejection.code)
        region, post = await self._live_post(post_id)
        if not isinstance(post, NewArrival | FlashOffer) or post.hold is None:
            raise Conflict("this post cannot be held", code="not_holdable")
        shop = await get_shop(self.redis, post.shop.id)
        if shop is None or shop.disabled or not shop.holds:
            raise Conflict("this shop does not take holds now", code="not_holdable")
        now = self.clock.now()
        # Counted in the take's own script, only when a unit is taken (storage.holds).
        today, yesterday = self.limiter.address_hashes(address, now.timestamp())
        limits = AddressLimits(most_open=self.settings.open_holds_per_address,
                               most_per_window=self.settings.holds_per_address_per_hour)
        secret = new_secret()
        record = HoldRecord(
            id="h_" + secrets.token_hex(8), region=region, post=_post_ref(post),
            shop=HoldShop(id=shop.id, name=shop.name, address=shop.address, lat=shop.lat,
                          lon=shop.lon, timezone=self.zone(shop)),
            name=new.name.strip(), code=code_from(secrets.token_bytes(HOLD_CODE_LEN)),
            secret_hash=secret_hash(secret), created_at=now,
            expires_at=hold_expires_at(now, post.hold.minutes), minutes=post.hold.minutes,
            address=today)
        for _ in range(_CODE_DRAWS):
            taken, retry = await self.store.take(record, yesterday=yesterday,
                                                 now=now.timestamp(), limits=limits)
            if taken is not Taken.CODE_TAKEN:
                break
            record = msgspec.structs.replace(
                record, code=code_from(secrets.token_bytes(HOLD_CODE_LEN)))
        match taken:
            case Taken.OK:
                await self._changed(record)
                return HoldCreated(id=record.id, secret=secret, code=record.code,
                                   status="pending", expires_at=record.expires_at)
            case Taken.SOLD_OUT:
                raise Conflict("every unit is held already", code="sold_out")
            case Taken.NOT_HOLDABLE:
                raise Conflict("this post cannot be held", code="not_holdable")
            case Taken.GONE:
                raise ApiError(f"no live post {post_id!r}: it was withdrawn or has ended",
                               code="post_gone", status=410)
            case Taken.ADDRESS_FULL:
                raise RateLimited(
                    f"at most {self.settings.open_holds_per_address} open holds at once: "
                    "collect or cancel one first", code="too_many_holds")
            case Taken.HOURLY:
                metrics.RATE_LIMITED.labels("holds").inc()
                raise RateLimited(
                    f"at most {self.settings.holds_per_address_per_hour} holds an hour from "
                    f"one address; retry in {retry}s", retry_after=retry)
            case _:
                raise Conflict("the shop has too many open holds now: retry", code="conflict")

    async def _find(self, hold_id: str) -> StoredHold | None:
        for region in self.settings.region_names:
            found = await self.store.get(region, hold_id)
            if found is not None:
                return found
        return None

    async def _with_secret(self, hold_id: str, authorization: str | None) -> StoredHold:
        secret = bearer_secret(authorization, "the secret the hold was answered with")
        found = await self._find(hold_id)
        # A wrong secret answers as an unknown hold: ids are not probed one secret at a time.
        if found is None or not secret_matches(secret, found.record.secret_hash):
            raise NotFound(f"no hold {hold_id!r} for this secret", code="unknown_hold")
        return found

    async def view(self, hold_id: str, authorization: str | None) -> HoldView:
        return hold_view(await self._with_secret(hold_id, authorization))

    async def cancel(self, hold_id: str, authorization: str | None) -> HoldView:
        found = await self._with_secret(hold_id, authorization)
        return hold_view(await self._act(found, "cancel"))

    # --- The shop -----------------------------------------------------------------------

    async def of_shop(self, shop: ShopRecord) -> list[ShopHold]:
        return [shop_hold(h) for h in await self.store.open_of_shop(shop.region, shop.id)]

    async def answer(self, shop: ShopRecord, hold_id: str, action: Action) -> ShopHold:
        found = await self.store.get(shop.region, hold_id)
        if found is None or found.record.shop.id != shop.id:
            raise NotFound(f"this shop has no hold {hold_id!r}", code="unknown_hold")
        return shop_hold(await self._act(found, action))

    def zone(self, shop: ShopRecord) -> str:
        """Where the shop's day is: its hours' zone, else the deployment's."""
        return shop.hours.timezone if shop.hours is not None else self.settings.timezone

    def local_day(self, shop: ShopRecord) -> str:
        """The shop's date now, where "held today" is counted."""
        return self._day_in(self.zone(shop))

    def _day_in(self, zone: str) -> str:
        return self.clock.now().astimezone(ZoneInfo(zone)).date().isoformat()

    async def held_today(self, shop: ShopRecord) -> int:
        return await self.store.held_today(shop.region, shop.id, self.local_day(shop))

    async def taken_of_shop(self, shop: ShopRecord) -> dict[str, int]:
        return await self.store.taken_of_shop(shop.region, shop.id)

    # --- Time and posts -----------------------------------------------------------------

    async def expire_due(self, region: str) -> int:
        """End every open hold of the region whose time is up (idempotent: the scheduler
        runs it every minute and at each hold's time, and after downtime)."""
        ended = 0
        now = self.clock.now()
        for hold_id in await self.store.due(region, now.timestamp()):
            found = await self.store.get(region, hold_id)
            if found is None or found.record.expires_at > now:
                continue
            changed, _ = await self.store.change(found.record, "expire", now)
            if changed is Changed.OK:
                ended += 1
                await self._changed(found.record)
        return ended

    async def _act(self, found: StoredHold, action: Action) -> StoredHold:
        now = self.clock.now()
        if found.status in ("pending", "accepted") and found.record.expires_at <= now:
            # Its time is up: it expires now, whatever was asked (the sweep may be late).
            changed, _ = await self.store.change(found.record, "expire", now)
            if changed is Changed.OK:
                await self._changed(found.record)
            raise Conflict("this hold's time is up: it has expired", code="hold_ended")
        changed, status = await self.store.change(
            found.record, action, now,
            day=self._day_in(found.record.shop.timezone or self.settings.timezone))
        if changed is Changed.UNKNOWN:
            raise NotFound(f"no hold {found.record.id!r}", code="unknown_hold")
        after = await self.store.get(found.record.region, found.record.id)
        if changed is Changed.STAYS or after is None:
            if status in ("pending", "accepted"):  # accepting an accepted one, say
                raise Conflict(f"this hold is {status}: it cannot be changed so",
                               code="invalid_hold_change")
            raise Conflict(f"this hold is {status}: it has ended", code="hold_ended")
        await self._changed(found.record)
        return after

    async def _changed(self, record: HoldRecord) -> None:
        """Tell the shop's consoles (the street was told by the step's own script). Best
        effort: the step is done, and the caller must get its answer (a 503 here lost a
        new hold's secret when Redis died just after the take: a cold attacker's); a
        console missing it reads the truth at its next change or reconnection. Any refusal
        of Redis's counts, not only a lost connection: one that answers the PUBLISH with
        an error (a NOPERM of its ACL, an OOM) lost the secret the same way."""
        try:
            await announce_change(self.redis, record.shop.id)
        except _NOT_TOLD as exc:
            log.warning("holds: consoles of %s not told of a change: %r", record.shop.id, exc)

