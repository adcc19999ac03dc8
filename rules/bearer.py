"""Secrets handed once to a passer-by (a hold's, a push subscription's) and shown back in
`Authorization: Bearer <secret>`: drawn, stored only as a SHA-256 (192 random bits: a salt
or a slow hash adds nothing, and a key would have to outlive every deployment's restart),
compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from rules.errors import Unauthorized

__all__ = ["bearer_secret", "new_secret", "secret_hash", "secret_matches"]


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(stored_hash, secret_hash(secret))


def bearer_secret(authorization: str | None, what: str) -> str:
    """The secret of `Authorization: Bearer <secret>`; 401 `missing_token` without one
    (`what`: which secret, for the message)."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized(f"Authorization: Bearer <{what}>", code="missing_token")
    return secret.strip()
