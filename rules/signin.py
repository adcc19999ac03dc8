"""One-time console sign-in links, without storage: the code, its hash and the link.

The code rides in the link's fragment (`/shop#code=...`): browsers never send a fragment
to the server nor put it in a Referer, so it reaches no access log, proxy or cache; the
console page reads it, drops it from the address bar and redeems it with a POST.
"""

from __future__ import annotations

import secrets

from rules.shops import hash_token
from schemas.limits import SIGNIN_CODE_BYTES

__all__ = ["CONSOLE_PATH", "hash_code", "new_code", "signin_url"]

CONSOLE_PATH = "/shop"


def new_code() -> str:
    return secrets.token_urlsafe(SIGNIN_CODE_BYTES)


# A code has full entropy, as a token has: its plain SHA-256 is enough (rules.shops).
hash_code = hash_token


def signin_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}{CONSOLE_PATH}#code={code}"
