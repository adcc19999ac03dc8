"""Which encoding a client takes, and whether its copy is still current (RFC 9110, pure).

Used by web/assets.py for the pages and web/static: both read request headers only,
so they are tested directly, without a server.
"""

from __future__ import annotations

__all__ = ["accepts_gzip", "etag_matches"]


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


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether `Accept-Encoding` allows gzip: named (or `*`) with a weight above 0.

    An explicit `gzip;q=0` refuses it even when `*` is welcome; no header at all means
    the client said nothing, and identity is the safe answer (RFC 9110 12.5.3 allows
    either; old proxies that strip the header cannot decode).
    """
    if not accept_encoding:
        return False
    star: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return _quality(params) > 0
        if coding == "*":
            star = _quality(params)
    return star is not None and star > 0


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 13.1.2 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
