"""The shop registry: create shops, look them up, check their tokens.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored
(a token has full entropy, so a salt or slow hash adds nothing) and it is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

import msgspec
from redis.asyncio import Redis

from schemas.posts import ShopSummary
from schemas.shops import NewShop, ShopCreated, ShopProfile, ShopRecord
from streetfeed import keys
from streetfeed.clock import Clock
from streetfeed.errors import NotFound, Unauthorized

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


def profile_of(record: ShopRecord) -> ShopProfile:
    return ShopProfile(id=record.id, name=record.name, category=record.category,
                       lat=record.lat, lon=record.lon, address=record.address)


def summary_of(record: ShopRecord) -> ShopSummary:
    return ShopSummary(id=record.id, name=record.name, category=record.category,
                       lat=record.lat, lon=record.lon, address=record.address)


async def create_shop(redis: Redis, shop: NewShop, *, region: str, clock: Clock) -> ShopCreated:
    token = new_token()
    while True:
        shop_id = new_shop_id(shop.name)
        record = ShopRecord(id=shop_id, name=shop.name, category=shop.category, lat=shop.lat,
                            lon=shop.lon, address=shop.address, region=region,
                            token_hash=hash_token(token), created_at=clock.now())
        if await redis.set(keys.shop(shop_id), _encode(record), nx=True):
            break
    await redis.sadd(keys.shops_index(), shop_id)
    return ShopCreated(id=shop_id, token=token, name=shop.name, region=region)


async def get_shop(redis: Redis, shop_id: str) -> ShopRecord | None:
    raw = await redis.get(keys.shop(shop_id))
    return None if raw is None else _decode_record(raw)


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
    record = await require_shop(redis, shop_id)
    if not token_matches(token.strip(), record.token_hash):
        raise Unauthorized("the token is not valid for this shop", code="invalid_token")
    return record
