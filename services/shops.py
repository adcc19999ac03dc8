"""Shop changes that reach beyond the record: moderation, regions, republishing, withdrawal."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from rules.categories import require_category
from rules.clock import Clock
from rules.errors import InvalidInput
from rules.moderation import Policy, Rejection, check_hours, check_shop
from rules.regions import region_of
from rules.shops import hash_token, new_shop_id, new_token, validate_hours
from runtime.settings import Settings
from schemas.hours import ShopHours
from schemas.shops import NewShop, ShopCreated, ShopRecord, ShopUpdate
from services.republish import Republisher
from storage import keys
from storage.holds import HoldStore
from storage.live import LiveIndex
from storage.redis_conn import async_reply
from storage.shops import change_shop, encode_record, require_shop

__all__ = ["create_shop", "home_region", "set_disabled", "set_hours", "update_shop"]


def home_region(settings: Settings, lat: float, lon: float) -> str:
    """The region a shop at (lat, lon) belongs to: the first configured one containing it."""
    region = region_of(settings.all_regions, lat, lon)
    if region is None:
        raise InvalidInput(f"({lat}, {lon}) is in none of this deployment's regions "
                           f"({', '.join(settings.region_names)})", code="outside_regions")
    return region


def _refuse(rejection: Rejection | None) -> None:
    if rejection is not None:
        raise InvalidInput(rejection.message, code=rejection.code)


async def create_shop(redis: Redis, shop: NewShop, *, region: str, clock: Clock,
                      policy: Policy | None = None) -> ShopCreated:
    category = require_category(shop.category)
    # Name and address show on every card of the shop: the posts' policy.
    _refuse(check_shop(msgspec.structs.asdict(shop), policy or Policy()))
    token = new_token()
    while True:
        shop_id = new_shop_id(shop.name)
        record = ShopRecord(id=shop_id, name=shop.name, category=category, lat=shop.lat,
                            lon=shop.lon, address=shop.address, region=region,
                            token_hash=hash_token(token), created_at=clock.now())
        if await redis.set(keys.shop(shop_id), encode_record(record), nx=True):
            break
    await async_reply(redis.sadd(keys.shops_index(), shop_id))
    await redis.incr(keys.shops_version())
    return ShopCreated(id=shop_id, token=token, name=shop.name, region=region)


async def update_shop(redis: Redis, shop_id: str, update: ShopUpdate, clock: Clock,
                      settings: Settings, policy: Policy | None = None) -> ShopRecord:
    changes = {k: v for k, v in msgspec.structs.asdict(update).items()
               if v is not msgspec.UNSET}
    if not changes:
        raise InvalidInput("nothing to change", code="empty_patch")
    if "category" in changes:
        changes["category"] = require_category(changes["category"])
    _refuse(check_shop(changes, policy or settings.moderation_policy()))
    current = await require_shop(redis, shop_id)
    lat, lon = changes.get("lat", current.lat), changes.get("lon", current.lon)
    if home_region(settings, lat, lon) != current.region:
        raise InvalidInput("a shop cannot move to another region; register it there",
                           code="region_change")
    record = await change_shop(
        redis, shop_id,
        lambda r: msgspec.structs.replace(r, **changes, updated_at=clock.now()))
    # Cards show the new profile: at once, or folded into one republish at the end of
    # the interval when the shop changed it recently (a frame per post to every socket).
    await Republisher(redis, settings, clock).profile_changed(record)
    return record


async def set_hours(redis: Redis, shop_id: str, hours: ShopHours | None,
                    clock: Clock, policy: Policy | None = None) -> ShopRecord:
    if hours is not None:
        validate_hours(hours)
        _refuse(check_hours(hours, policy or Policy()))
    return await change_shop(redis, shop_id, lambda r: msgspec.structs.replace(
        r, hours=hours, updated_at=clock.now()))


async def set_disabled(redis: Redis, shop_id: str, disabled: bool, clock: Clock,
                       settings: Settings) -> int:
    """Disable (or enable) a shop; disabling takes its live posts off the street at once
    and declines its open holds (nobody would hand them over)."""
    record = await change_shop(redis, shop_id, lambda r: msgspec.structs.replace(
        r, disabled=disabled, updated_at=clock.now()))
    if not disabled:
        return 0
    live = LiveIndex(redis, record.region, settings)
    withdrawn = 0
    for post_id in await async_reply(redis.smembers(keys.shop_posts(record.region,
                                                                      shop_id))):
        if await live.remove(post_id.decode(), "withdrawn", now_ts=clock.now().timestamp(),
                             shop_id=shop_id):
            withdrawn += 1
    await HoldStore(redis).shop_disabled(record.region, shop_id, clock.now())
    return withdrawn
