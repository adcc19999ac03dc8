"""Which encoding a client takes, and whether its copy is still current (RFC 9110, pure).

Used by web/assets.py (pages and web/static) and web/compression.py (the API's JSON):
both read request headers only, so they are tested directly, without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["choose_encoding", "etag_matches"]

Offer = TypeVar("Offer", bound=str)
_IDENTITY = "identity"
# Names a client may use for the same coding (RFC 9110 8.4.1.3: x-gzip is gzip).
_ALIASES = {"x-gzip": "gzip"}


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # a malformed weight is no consent to an encoding
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def choose_encoding(accept_encoding: str | None, offered: Sequence[Offer]) -> Offer | None:
    """The coding of `offered` (ours, best first, e.g. `("br", "gzip")`) that
    `Accept-Encoding` weighs highest, or None for identity (the bytes as they are).

    A coding named with q=0 is refused even when `*` is welcome; `*` stands for every
    coding not named; among equal weights ours decides (the order of `offered`, then
    identity, which is never refused here: RFC 9110 12.5.3 allows answering it rather
    than a 406, and every client reads it). No header at all means the client said
    nothing: identity is the safe answer (old proxies that strip the header cannot
    decode), though the RFC allows either.
    """
    if not accept_encoding:
        return None
    named: dict[str, float] = {}
    star: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        coding = _ALIASES.get(coding, coding)
        if coding == "*":
            star = _quality(params)
        elif coding:
            # Named twice: the first counts, as most servers read it.
            named.setdefault(coding, _quality(params))
    best: Offer | None = None
    best_q = 0.0
    for offer in offered:
        q = named.get(offer, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = offer, q
    # Identity beats a coding only when named with a higher weight: a client listing
    # gzip alone prefers it to the plain bytes it may also read.
    identity_q = named.get(_IDENTITY)
    if identity_q is not None and identity_q > best_q:
        return None
    return best


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 13.1.2 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
