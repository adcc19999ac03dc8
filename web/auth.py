"""Who is asking: a shop's bearer token (API clients) or its console session (cookie).

The console signs in once with the token; the browser then holds only an
HttpOnly, SameSite=Strict cookie whose random value is stored hashed in Redis
with the token hash it was opened with, so rotating the token ends every
session at once. Cookie-authenticated writes must come from our own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from redis.asyncio import Redis
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from rules.errors import ApiError, Unauthorized
from schemas.shops import ShopRecord
from storage import keys, shops
from storage.redis_conn import async_reply, text

__all__ = ["COOKIE", "close_session", "open_session", "require_same_origin", "session_key",
           "session_shop", "shop_for", "shop_of_session"]
from web.state import state_of

COOKIE = "sf_session"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# One script, so a session never exists without its expiry (a crash between HSET and
# EXPIRE would leave one that never ends). Not MULTI: a cluster client has none; one key,
# so one slot.
_OPEN_SESSION = """
-- KEYS: session; ARGV: shop id, token hash, ttl_s
redis.call('HSET', KEYS[1], 'shop_id', ARGV[1], 'token_hash', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""


async def open_session(redis: Redis, record: ShopRecord, response: Response,
                       secure: bool, ttl_s: int) -> None:
    session_id = secrets.token_urlsafe(32)
    key = keys.session(_hash(session_id))
    await redis.register_script(_OPEN_SESSION)(
        keys=[key], args=[record.id, record.token_hash, ttl_s])
    response.set_cookie(COOKIE, session_id, max_age=ttl_s, httponly=True,
                        samesite="strict", secure=secure, path="/")


async def close_session(redis: Redis, request: Request, response: Response) -> None:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        key = session_key(session_id)
        shop_id = await async_reply(redis.hget(key, "shop_id"))
        await redis.delete(key)
        if shop_id is not None:  # its console sockets, in other tabs too, end now
            await shops.announce_change(redis, text(shop_id))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def session_key(session_id: str) -> str:
    """The Redis key of a session, from its cookie's value (stored hashed)."""
    return keys.session(_hash(session_id))


async def session_shop(redis: Redis, conn: HTTPConnection) -> ShopRecord | None:
    session_id = conn.cookies.get(COOKIE)
    return await shop_of_session(redis, session_id) if session_id else None


async def shop_of_session(redis: Redis, session_id: str) -> ShopRecord | None:
    """The shop a session cookie's value opens, if it still does (web.console reads the
    cookie of a socket's handshake itself)."""
    key = session_key(session_id)
    stored = await async_reply(redis.hmget(key, ["shop_id", "token_hash"]))
    if stored[0] is None:
        return None
    record = await shops.get_shop(redis, stored[0].decode())
    if record is None or record.disabled or not hmac.compare_digest(
            stored[1].decode(), record.token_hash):
        await redis.delete(key)  # opened with a token that no longer works
        return None
    return record


def _same_origin(request: Request) -> bool:
    # A browser that says where a request comes from is believed first: cross-site (or
    # same-site from a sibling origin) is refused even without an Origin header.
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser cross-site request: browsers send Origin on writes
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def require_same_origin(request: Request) -> None:
    """Refuse a browser's cross-site write: every request that acts with a session cookie,
    or opens one (sign-in: a forged one signs the victim into the attacker's shop)."""
    if not _same_origin(request):
        raise ApiError("cross-origin request refused", code="cross_origin", status=403)


async def shop_for(request: Request, shop_id: str) -> ShopRecord:
    """The shop in the path, if the request speaks for it (bearer token or session)."""
    authorization = request.headers.get("authorization")
    redis: Redis = state_of(request).redis
    if authorization:
        return await shops.authenticate(redis, shop_id, authorization)
    record = await session_shop(redis, request)
    if record is None:
        return await shops.authenticate(redis, shop_id, None)  # raises missing_token
    if request.method not in _SAFE_METHODS:
        require_same_origin(request)
    if record.id != shop_id:
        raise Unauthorized("signed in as another shop", code="invalid_token")
    return record
