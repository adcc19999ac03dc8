"""One-time console sign-in links: made by the operator (`streetfeed shops link`) or by a
signed-in console ("Sign in on another device"), redeemed once for a console session.

A link carries the shop's token hash of when it was made: rotating the token refuses
every outstanding link, as it ends every session (web/auth.py); a disabled shop's links
are refused while it is disabled, as its sessions are.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis

from rules.clock import Clock
from rules.errors import Conflict, NotFound, Unauthorized
from rules.signin import hash_code, new_code, signin_url
from schemas.limits import SIGNIN_LINK_TTL_S
from schemas.shops import ShopRecord
from storage import signin_links
from storage.shops import get_shop

__all__ = ["NewLink", "make_link", "redeem"]


@dataclass(frozen=True, slots=True)
class NewLink:
    shop: ShopRecord
    url: str
    expires_at: datetime


async def make_link(redis: Redis, shop_id: str, base_url: str, clock: Clock) -> NewLink:
    """A fresh link for an active shop (404 `unknown_shop`, 409 `shop_disabled`); only the
    hash of its code is kept."""
    record = await get_shop(redis, shop_id)
    if record is None:
        raise NotFound(f"no shop with id {shop_id!r}", code="unknown_shop")
    if record.disabled:
        raise Conflict(f"shop {shop_id!r} is disabled (streetfeed shops enable {shop_id})",
                       code="shop_disabled")
    code = new_code()
    await signin_links.store(redis, hash_code(code), record.id, record.token_hash,
                             SIGNIN_LINK_TTL_S)
    return NewLink(shop=record, url=signin_url(base_url, code),
                   expires_at=clock.now() + timedelta(seconds=SIGNIN_LINK_TTL_S))


async def redeem(redis: Redis, code: str) -> ShopRecord:
    """The shop a link's code opens a session for, once; 401 `signin_link_used` or
    `signin_link_invalid` (unknown, expired, its shop disabled or its token rotated).

    The link is marked used only once its shop accepts it: a link tried while its shop
    is disabled works once the shop is enabled again. The mark is still the one gate
    (`signin_links.claim`), so parallel redemptions open exactly one session."""
    code_hash = hash_code(code)
    link = await signin_links.read(redis, code_hash)
    if link == "used":
        raise _used()
    if link == "unknown":
        raise _unknown()
    record = await get_shop(redis, link.shop_id)
    if record is None or record.disabled:
        raise Unauthorized("this sign-in link's shop is disabled", code="signin_link_invalid")
    if not hmac.compare_digest(record.token_hash, link.token_hash):
        raise Unauthorized("the shop's token was rotated since this sign-in link was made; "
                           "ask for a new one", code="signin_link_invalid")
    claimed = await signin_links.claim(redis, code_hash)
    if claimed == "used":  # another request won the race since the read
        raise _used()
    if claimed == "unknown":  # expired since the read
        raise _unknown()
    return record


def _used() -> Unauthorized:
    return Unauthorized("this sign-in link was already used; ask for a new one",
                        code="signin_link_used")


def _unknown() -> Unauthorized:
    return Unauthorized("unknown or expired sign-in link; ask for a new one",
                        code="signin_link_invalid")
