"""The shop registry: create, look up, update, disable, rotate tokens, set hours.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored
(a token has full entropy, so a salt or slow hash adds nothing) and it is
compared in constant time. A record changes under WATCH, so two concurrent
updates cannot lose one another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Callable
from zoneinfo import ZoneInfo

import msgspec
from redis.asyncio import Redis

from schemas.hours import ShopHours
from schemas.posts import ShopSummary
from schemas.shops import NewShop, ShopCreated, ShopProfile, ShopRecord, ShopUpdate
from streetfeed import keys
from streetfeed.clock import Clock
from streetfeed.errors import InvalidInput, NotFound, Unauthorized
from streetfeed.hours import opening_state
from streetfeed.live import LiveIndex
from streetfeed.moderation import Policy, Rejection, check_hours, check_shop
from streetfeed.redis_conn import get_many
from streetfeed.regions import region_of
from streetfeed.republish import Republisher
from streetfeed.settings import Settings

_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(ShopRecord).decode


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:40].strip("-") or "shop"


def new_shop_id(name: str) -> str:
    # Readable in URLs (/screen/{id}) and unguessable enough not to collide.
    return f"{slugify(name)}-{secrets.token_hex(3)}"


def profile_of(record: ShopRecord, clock: Clock | None = None) -> ShopProfile:
    state = opening_state(record.hours, clock.now()) if clock is not None else None
    return ShopProfile(id=record.id, name=record.name, category=record.category,
                       lat=record.lat, lon=record.lon, address=record.address,
                       open_now=state.open_now if state else None,
                       next_change=state.next_change if state else None)


def summary_of(record: ShopRecord) -> ShopSummary:
    return ShopSummary(id=record.id, name=record.name, category=record.category,
                       lat=record.lat, lon=record.lon, address=record.address)


def validate_hours(hours: ShopHours) -> None:
    try:
        ZoneInfo(hours.timezone)
    except Exception:
        raise InvalidInput(f"unknown time zone {hours.timezone!r}", code="invalid_hours") from None
    for ranges in [*hours.weekly.values(), *(e.ranges for e in hours.exceptions)]:
        for rng in ranges:
            if rng.open == rng.close:
                raise InvalidInput(f"empty range {rng.open}-{rng.close}", code="invalid_hours")


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
    # Name, category and address show on every card of the shop: the posts' policy.
    _refuse(check_shop(msgspec.structs.asdict(shop), policy or Policy()))
    token = new_token()
    while True:
        shop_id = new_shop_id(shop.name)
        record = ShopRecord(id=shop_id, name=shop.name, category=shop.category, lat=shop.lat,
                            lon=shop.lon, address=shop.address, region=region,
                            token_hash=hash_token(token), created_at=clock.now())
        if await redis.set(keys.shop(shop_id), _encode(record), nx=True):
            break
    await redis.sadd(keys.shops_index(), shop_id)
    await redis.incr(keys.shops_version())
    return ShopCreated(id=shop_id, token=token, name=shop.name, region=region)


async def get_shop(redis: Redis, shop_id: str) -> ShopRecord | None:
    raw = await redis.get(keys.shop(shop_id))
    return None if raw is None else _decode_record(raw)


async def list_shops(redis: Redis, *, include_disabled: bool = False) -> list[ShopRecord]:
    ids = sorted(i.decode() for i in await redis.smembers(keys.shops_index()))
    if not ids:
        return []
    values = await get_many(redis, [keys.shop(i) for i in ids])
    records = [_decode_record(v) for v in values if v is not None]
    return [r for r in records if include_disabled or not r.disabled]


async def require_shop(redis: Redis, shop_id: str) -> ShopRecord:
    record = await get_shop(redis, shop_id)
    if record is None or record.disabled:
        raise NotFound(f"no shop with id {shop_id!r}", code="unknown_shop")
    return record


async def authenticate(redis: Redis, shop_id: str, authorization: str | None) -> ShopRecord:
    """The shop named in the path, if the bearer token is its own."""
    if not authorization:
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="missing_token")
    return await check_token(redis, shop_id, token.strip())


async def check_token(redis: Redis, shop_id: str, token: str) -> ShopRecord:
    record = await require_shop(redis, shop_id)
    if not token_matches(token, record.token_hash):
        raise Unauthorized("the token is not valid for this shop", code="invalid_token")
    return record


async def change_shop(redis: Redis, shop_id: str,
                      change: Callable[[ShopRecord], ShopRecord]) -> ShopRecord:
    """Apply `change` to the stored record atomically: compare-and-set, retried on conflict
    (a script rather than WATCH, which a cluster client does not offer)."""
    key = keys.shop(shop_id)
    swap = redis.register_script(_COMPARE_AND_SET)
    while True:
        raw = await redis.get(key)
        if raw is None:
            raise NotFound(f"no shop with id {shop_id!r}", code="unknown_shop")
        updated = change(_decode_record(raw))
        if await swap(keys=[key], args=[raw, _encode(updated)]):
            await redis.incr(keys.shops_version())  # shop lists look again (web.directory)
            return updated


async def update_shop(redis: Redis, shop_id: str, update: ShopUpdate, clock: Clock,
                      settings: Settings, policy: Policy | None = None) -> ShopRecord:
    changes = {k: v for k, v in msgspec.structs.asdict(update).items()
               if v is not msgspec.UNSET}
    if not changes:
        raise InvalidInput("nothing to change", code="empty_patch")
    _refuse(check_shop(changes, policy or Policy.from_settings(settings)))
    current = await require_shop(redis, shop_id)
    lat, lon = changes.get("lat", current.lat), changes.get("lon", current.lon)
    if home_region(settings, lat, lon) != current.region:  # type: ignore[arg-type]
        raise InvalidInput("a shop cannot move to another region; register it there",
                           code="region_change")
    record = await change_shop(
        redis, shop_id,
        lambda r: msgspec.structs.replace(r, **changes, updated_at=clock.now()))
    # Cards show the new profile: at once, or folded into one republish at the end of
    # the interval when the shop changed it recently (a frame per post to every socket).
    await Republisher(redis, settings, clock).profile_changed(record)
    return record


async def rotate_token(redis: Redis, shop_id: str, clock: Clock) -> str:
    token = new_token()
    await change_shop(redis, shop_id, lambda r: msgspec.structs.replace(
        r, token_hash=hash_token(token), updated_at=clock.now()))
    return token


async def set_hours(redis: Redis, shop_id: str, hours: ShopHours | None,
                    clock: Clock, policy: Policy | None = None) -> ShopRecord:
    if hours is not None:
        validate_hours(hours)
        _refuse(check_hours(hours, policy or Policy()))
    return await change_shop(redis, shop_id, lambda r: msgspec.structs.replace(
        r, hours=hours, updated_at=clock.now()))


async def set_disabled(redis: Redis, shop_id: str, disabled: bool, clock: Clock,
                       feed_maxlen: int) -> int:
    """Disable (or enable) a shop; disabling takes its live posts off the street at once."""
    record = await change_shop(redis, shop_id, lambda r: msgspec.structs.replace(
        r, disabled=disabled, updated_at=clock.now()))
    if not disabled:
        return 0
    live = LiveIndex(redis, record.region, feed_maxlen=feed_maxlen)
    withdrawn = 0
    for post_id in await redis.smembers(keys.shop_posts(record.region, shop_id)):
        if await live.remove(post_id.decode(), "withdrawn", now_ts=clock.now().timestamp(),
                             shop_id=shop_id):
            withdrawn += 1
    return withdrawn
