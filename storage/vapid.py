"""The deployment's VAPID key pair (RFC 8292): what signs every push, and whose public key
browsers subscribe with (GET /api/v1/push/key).

STREETFEED_VAPID_PRIVATE_KEY when set (settings.vapid_private_key); otherwise generated
once in the data dir, `vapid-private.pem`, mode 0600. Creation is atomic: the key is
written whole to a temporary file of its own (O_EXCL) and then linked under the final name,
which fails if another process got there first; so processes starting together (`up`'s
web process and its pusher) agree on one key, and none ever reads half a file. The private
key is never logged, nor returned by anything here but `VapidKey.private`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rules.errors import ConfigError
from runtime.settings import Settings

__all__ = ["VAPID_FILE", "VapidKey", "load_vapid_key"]

VAPID_FILE = "vapid-private.pem"


@dataclass(frozen=True, slots=True)
class VapidKey:
    private: ec.EllipticCurvePrivateKey = field(repr=False)
    # The uncompressed P-256 point, base64url without padding (the page's
    # applicationServerKey, and the `k=` of every push's Authorization header).
    public: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _of(private: ec.EllipticCurvePrivateKey) -> VapidKey:
    point = private.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    return VapidKey(private=private, public=_b64url(point))


def _from_environment(value: str) -> VapidKey:
    """The raw 32-byte scalar in base64url (what `web-push generate-vapid-keys` and
    py-vapid print), or a PEM private key."""
    try:
        if value.startswith("-----BEGIN"):
            loaded = serialization.load_pem_private_key(value.encode(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(
                    loaded.curve, ec.SECP256R1):
                raise ValueError("not a P-256 key")
            return _of(loaded)
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if len(raw) != 32:
            raise ValueError("expected 32 bytes")
        return _of(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))
    except ValueError as exc:
        # What was wrong, never the value.
        raise ConfigError(f"STREETFEED_VAPID_PRIVATE_KEY: not a P-256 private key "
                          f"(base64url of 32 bytes, or PEM): {exc}") from None


def _read(path: Path) -> VapidKey:
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: not an elliptic-curve private key")
    return _of(loaded)


def load_vapid_key(settings: Settings) -> VapidKey:
    secret = settings.vapid_private_key
    if secret is not None:
        return _from_environment(secret.reveal())
    data_dir = Path(settings.data_dir)
    path = data_dir / VAPID_FILE
    if path.exists():
        return _read(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    temporary = data_dir / f".{VAPID_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        # Fails when another process linked its key first: then that one is the key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)
