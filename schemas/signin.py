"""One-time console sign-in links: the code a browser redeems and the link a console makes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from schemas import limits

__all__ = ["CodeField", "SignInCode", "SignInLink"]


class CodeField(msgspec.Struct, frozen=True):
    """Read from a sign-in body first, whatever else it holds: with a `code`, the body is a
    sign-in link's (SignInCode), else a shop id and token (schemas.shops.SignIn)."""

    code: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class SignInCode(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /api/v1/session` with the code of a sign-in link instead of a shop id and token
    (the console page reads it from the link's fragment, `/shop#code=...`)."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=limits.SIGNIN_CODE_MAX,
                                      pattern=r"^[A-Za-z0-9_-]+(?!\n)$")]


class SignInLink(msgspec.Struct, frozen=True):
    """`POST /api/v1/shops/{id}/signin-links`: a fresh link, once only, until `expires_at`.
    `qr` is the link's QR code as an SVG `data:` URI (the code must never travel in a URL
    that a request line, an access log or a cache could keep)."""

    url: str
    expires_at: datetime
    qr: str
