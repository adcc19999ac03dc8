"""Subscriptions to alerts for followed shops (Web Push, DESIGN.md section 9), the web
side: a page subscribes with its browser's PushSubscription and the shop ids it follows,
then changes or removes that with the secret it was answered with. workers.pusher sends.

Ids of no shop are dropped (a device keeps follows of a shop since removed; refusing the
whole subscription would silence the others), and repeats folded; a subscription left with
no shop is refused (422 `unknown_shop`). A second subscribe from one browser (the same
endpoint) replaces its subscription. Subscribing is limited per address and hour.
"""

from __future__ import annotations

import secrets

import msgspec
from redis.asyncio import Redis

from rules.bearer import bearer_secret, new_secret, secret_hash, secret_matches
from rules.clock import Clock
from rules.errors import InvalidInput, NotFound
from rules.hours import is_time_zone
from rules.push_endpoint import check_endpoint, decode_keys, parse_allowed_hosts
from runtime.settings import Settings
from schemas.posts import Kind
from schemas.push import (
    PushCreated,
    PushRecord,
    PushSubscribeIn,
    PushUpdateIn,
    PushView,
)
from storage import keys
from storage.push import PushStore, ensure_groups
from storage.ratelimit import RateLimiter
from storage.redis_conn import get_many

__all__ = ["ALL_KINDS", "Subscriptions"]

ALL_KINDS: tuple[Kind, ...] = ("new_arrival", "flash_offer", "opening_change")
_WINDOW_S = 3600


def _view(record: PushRecord) -> PushView:
    return PushView(id=record.id, shops=record.shops, kinds=record.kinds,
                    quiet_hours=record.quiet_hours, timezone=record.timezone)


def _kinds(kinds: list[Kind] | None) -> list[Kind]:
    return list(ALL_KINDS) if kinds is None else [k for k in ALL_KINDS if k in kinds]


class Subscriptions:
    def __init__(self, redis: Redis, settings: Settings, clock: Clock,
                 limiter: RateLimiter) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.limiter = limiter
        self.store = PushStore(redis)
        self.allowed = parse_allowed_hosts(settings.push_allowed_hosts)
        self._groups_ready = False

    def _zone(self, timezone: str | None) -> str:
        if timezone is None:
            return self.settings.timezone
        if not is_time_zone(timezone):
            raise InvalidInput(f"unknown time zone {timezone[:64]!r}",
                               code="invalid_push_subscription")
        return timezone

    async def _known_shops(self, shop_ids: list[str]) -> list[str]:
        """The ids of existing shops, repeats folded, in the order given."""
        unique = list(dict.fromkeys(shop_ids))
        records = await get_many(self.redis, [keys.shop(s) for s in unique])
        known = [s for s, raw in zip(unique, records, strict=True) if raw is not None]
        if not known:
            raise InvalidInput("none of these shops exists", code="unknown_shop")
        return known

    async def subscribe(self, new: PushSubscribeIn, address: str) -> PushCreated:
        check_endpoint(new.subscription.endpoint, self.allowed)
        decode_keys(new.subscription.keys.p256dh, new.subscription.keys.auth)
        zone = self._zone(new.timezone)
        subject = await self.limiter.address_key(address)
        await self.limiter.hit("push_subscribes", subject,
                               self.settings.push_subscribes_per_address_per_hour, _WINDOW_S)
        shops = await self._known_shops(new.shops)
        if not self._groups_ready:
            # Posts published from now on wait in the pushers' group even if no pusher runs.
            await ensure_groups(self.redis, self.settings.region_names)
            self._groups_ready = True
        now = self.clock.now()
        secret = new_secret()
        record = PushRecord(
            id="s_" + secrets.token_hex(8), endpoint=new.subscription.endpoint,
            p256dh=new.subscription.keys.p256dh.rstrip("="),
            auth=new.subscription.keys.auth.rstrip("="), shops=shops,
            kinds=_kinds(new.kinds), quiet_hours=new.quiet_hours, timezone=zone,
            secret_hash=secret_hash(secret), created_at=now, updated_at=now)
        await self.store.subscribe(record, self.settings.push_subscription_ttl_s)
        return PushCreated(id=record.id, secret=secret, shops=shops)

    async def _with_secret(self, sub_id: str, authorization: str | None) -> PushRecord:
        secret = bearer_secret(authorization, "the secret the subscription was answered with")
        record = await self.store.get(sub_id)
        # A wrong secret answers as an unknown subscription: ids are not probed.
        if record is None or not secret_matches(secret, record.secret_hash):
            raise NotFound(f"no subscription {sub_id!r} for this secret",
                           code="unknown_push_subscription")
        return record

    async def update(self, sub_id: str, authorization: str | None,
                     change: PushUpdateIn) -> PushView:
        record = await self._with_secret(sub_id, authorization)
        # Absent (UNSET): as they were; a null timezone: the deployment's.
        zone = (record.timezone if change.timezone is msgspec.UNSET
                else self._zone(change.timezone))
        quiet = change.quiet_hours if isinstance(change.quiet_hours, bool) else record.quiet_hours
        shops = await self._known_shops(change.shops)
        now = self.clock.now()
        updated = PushRecord(
            id=record.id, endpoint=record.endpoint, p256dh=record.p256dh, auth=record.auth,
            shops=shops, kinds=_kinds(change.kinds), quiet_hours=quiet, timezone=zone,
            secret_hash=record.secret_hash, created_at=record.created_at, updated_at=now)
        if not await self.store.update(updated, self.settings.push_subscription_ttl_s,
                                       now.timestamp()):
            raise NotFound(f"no subscription {sub_id!r}", code="unknown_push_subscription")
        return _view(updated)

    async def delete(self, sub_id: str, authorization: str | None) -> None:
        record = await self._with_secret(sub_id, authorization)
        await self.store.delete(record)
