"""One-time console sign-in links in Redis, by the SHA-256 of their code.

A link is a hash (`shop_id`, the shop's `token_hash` when it was made) expiring with the
link. Redeeming first reads it (`read`), so that the caller can check its shop, then
claims it in one script (`claim`): the first claim marks it `used`, any later one (a
parallel request, a reload) sees `used`, and once the key expires nobody can tell it
from a code that never was. A link whose shop refuses it (disabled for now) is read but
never claimed: it works again once its shop does. The shop's record is another key, of
another Cluster slot, hence the two steps; one key per script, hence cluster-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from storage import keys
from storage.redis_conn import async_reply

__all__ = ["Link", "claim", "read", "store"]

# One script, so a link never exists without its expiry (as sessions, web/auth.py).
_STORE = """
-- KEYS: link; ARGV: shop id, token hash, ttl_s
redis.call('HSET', KEYS[1], 'shop_id', ARGV[1], 'token_hash', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""
# HSETNX alone would create a missing link without expiry: checked in the same script.
# The `used` mark keeps the key's expiry, so a used link tells "used" until it would have
# expired anyway.
_CLAIM = """
-- KEYS: link
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'used', '1') == 0 then return 1 end
return 2
"""


@dataclass(frozen=True, slots=True)
class Link:
    """An unused link: whose it is, made with which token."""

    shop_id: str
    token_hash: str


async def store(redis: Redis, code_hash: str, shop_id: str, token_hash: str,
                ttl_s: int) -> None:
    await redis.register_script(_STORE)(keys=[keys.signin_link(code_hash)],
                                        args=[shop_id, token_hash, ttl_s])


async def read(redis: Redis, code_hash: str) -> Link | Literal["used", "unknown"]:
    """A link as it is now, claimed by nobody; "unknown" also when it expired."""
    shop_id, token_hash, used = await async_reply(redis.hmget(
        keys.signin_link(code_hash), ["shop_id", "token_hash", "used"]))
    if shop_id is None or token_hash is None:
        return "unknown"
    if used is not None:
        return "used"
    return Link(shop_id=shop_id.decode(), token_hash=token_hash.decode())


async def claim(redis: Redis, code_hash: str) -> Literal["claimed", "used", "unknown"]:
    """Mark a link used, for this request only: "claimed" for exactly one caller."""
    reply = await redis.register_script(_CLAIM)(keys=[keys.signin_link(code_hash)])
    if reply == 0:
        return "unknown"
    return "used" if reply == 1 else "claimed"
