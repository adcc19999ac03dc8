"""One-time console sign-in links, without storage: the code, its hash and the link.

The code rides in the link's fragment (`/shop#code=...`): browsers never send a fragment
to the server nor put it in a Referer, so it reaches no access log, proxy or cache; the
console page reads it, drops it from the address bar and redeems it with a POST.
"""

from __future__ import annotations

import hashlib
import secrets

from schemas.limits import SIGNIN_CODE_BYTES

__all__ = ["CONSOLE_PATH", "hash_code", "new_code", "signin_url"]

CONSOLE_PATH = "/shop"


def new_code() -> str:
    return secrets.token_urlsafe(SIGNIN_CODE_BYTES)


def hash_code(code: str) -> str:
    # Full-entropy random codes: a plain SHA-256 is enough (as for tokens, rules.shops).
    return hashlib.sha256(code.encode()).hexdigest()


def signin_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}{CONSOLE_PATH}#code={code}"
