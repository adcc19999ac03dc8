"""One-time console sign-in links in Redis, by the SHA-256 of their code.

A link is a hash (`shop_id`, the shop's `token_hash` when it was made) expiring with the
link. Redeeming claims it in one script: the first claim marks it `used` and gets the
shop, any later one (a parallel request, a reload) sees `used`, and once the key expires
nobody can tell it from a code that never was. One key per script, hence cluster-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from storage import keys

__all__ = ["LinkClaim", "claim", "store"]

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
return redis.call('HMGET', KEYS[1], 'shop_id', 'token_hash')
"""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What the one successful claim of a link learns: whose it is, made with which token."""

    shop_id: str
    token_hash: str


async def store(redis: Redis, code_hash: str, shop_id: str, token_hash: str,
                ttl_s: int) -> None:
    await redis.register_script(_STORE)(keys=[keys.signin_link(code_hash)],
                                        args=[shop_id, token_hash, ttl_s])


async def claim(redis: Redis, code_hash: str) -> LinkClaim | Literal["used", "unknown"]:
    """Claim a link for this request only; "unknown" also when it expired."""
    reply = await redis.register_script(_CLAIM)(keys=[keys.signin_link(code_hash)])
    if reply == 0:
        return "unknown"
    if reply == 1:
        return "used"
    shop_id, token_hash = reply
    return LinkClaim(shop_id=shop_id.decode(), token_hash=token_hash.decode())
