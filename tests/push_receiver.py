"""A local push service for the tests (RFC 8030), standing where FCM or Mozilla's autopush
would: an HTTP server on 127.0.0.1 (a random port, its own thread, so that a pusher in
another process reaches it too) that checks each push as a browser's push service and the
browser would, with code of its own (`cryptography` only, never http_ece or py_vapid: the
test must check the pusher's use of those libraries, not repeat it):

- the VAPID `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292): `k` the deployment's
  public key (GET /api/v1/push/key), the JWT an ES256 signature by it, `aud` the endpoint's
  origin, `exp` in the future and at most 24 h ahead, `sub` present;
- the aes128gcm body (RFC 8188, keys per RFC 8291), decrypted with the subscription's
  private key and auth secret, at most 4096 bytes.

Each push is recorded (headers TTL, Topic, Urgency; the JSON decrypted; what failed), and
an endpoint can be told to answer 404, 410, 429 with Retry-After, 500 or a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Push", "PushReceiver", "b64url", "unb64url"]

MAX_MESSAGE = 4096


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


@dataclass
class BrowserKeys:
    """What a browser keeps for one push subscription: its ECDH key and auth secret."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass
class Push:
    """One request the receiver got."""

    name: str
    status: int  # what the receiver answered
    headers: dict[str, str]
    size: int
    message: dict[str, Any] | None = None  # the decrypted JSON
    claims: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    @property
    def post_id(self) -> str | None:
        return None if self.message is None else self.message["post"]["id"]


def decrypt_aes128gcm(body: bytes, keys: BrowserKeys) -> bytes:
    """RFC 8291 section 3.4 and RFC 8188 section 2, as a browser does it."""
    salt, rs, idlen = body[:16], struct.unpack("!L", body[16:20])[0], body[20]
    sender_public = body[21:21 + idlen]
    ciphertext = body[21 + idlen:]
    if idlen != 65:
        raise ValueError(f"keyid of {idlen} bytes, not the sender's 65-byte public key")
    if len(ciphertext) > rs:
        raise ValueError("more than one record: a push message is one")
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
    ecdh_secret = keys.private.exchange(ec.ECDH(), sender)
    key_info = b"WebPush: info\x00" + keys.public + sender_public
    ikm = _hmac(_hmac(keys.auth, ecdh_secret), key_info + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    unpadded = padded.rstrip(b"\x00")
    if not unpadded.endswith(b"\x02"):
        raise ValueError("the last record's delimiter is not 0x02")
    return unpadded[:-1]


def verify_vapid(authorization: str, expected_key: str | None, audience: str) -> dict[str, Any]:
    """The JWT's claims once every RFC 8292 check passed; ValueError saying which failed."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"Authorization scheme {scheme!r}, not vapid")
    params = dict(part.strip().split("=", 1) for part in rest.split(","))
    token, key = params.get("t", ""), params.get("k", "")
    if expected_key is not None and key != expected_key:
        raise ValueError("k= is not the deployment's public key")
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(unb64url(header_b64))
    if header.get("alg") != "ES256":
        raise ValueError(f"JWT alg {header.get('alg')!r}")
    signature = unb64url(signature_b64)
    if len(signature) != 64:
        raise ValueError("ES256 signature is not 64 bytes")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    try:
        public.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                           int.from_bytes(signature[32:], "big")),
                      f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("the JWT's signature does not verify with k=") from None
    claims: dict[str, Any] = json.loads(unb64url(claims_b64))
    now = time.time()
    if claims.get("aud") != audience:
        raise ValueError(f"aud {claims.get('aud')!r}, not {audience!r}")
    if not now < float(claims.get("exp", 0)) <= now + 24 * 3600:
        raise ValueError(f"exp {claims.get('exp')!r} not within the next 24 h")
    if not claims.get("sub"):
        raise ValueError("no sub")
    return claims


class PushReceiver:
    """Start with `start()`; `subscription(name)` gives a browser's PushSubscription JSON
    whose endpoint is here; `pushes(name)` what arrived for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, BrowserKeys] = {}
        self._answers: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._pushes: list[Push] = []
        self.stolen: list[str] = []  # requests to /stolen: a redirect followed
        self.public_key: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows failures, not every request

            def do_POST(self) -> None:
                receiver._handle(self)

            def do_GET(self) -> None:
                receiver._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """The `host:port` for STREETFEED_PUSH_ALLOWED_HOSTS."""
        return f"127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()
            self._answers.clear()
            self._pushes.clear()
            self.stolen.clear()
            self.public_key = None

    def endpoint(self, name: str) -> str:
        # The path carries a random part, as real endpoints do (a capability): the tests
        # look for it in logs.
        return f"{self.origin}/push/{name}"

    def subscription(self, name: str | None = None) -> dict[str, Any]:
        name = name or "b" + secrets.token_hex(8)
        keys = BrowserKeys()
        with self._lock:
            self._keys[name] = keys
        return {"endpoint": self.endpoint(name), "expirationTime": None,
                "keys": {"p256dh": b64url(keys.public), "auth": b64url(keys.auth)}}

    def answer(self, name: str, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """The next answers for `name`'s endpoint, in order (then 201 again)."""
        with self._lock:
            self._answers.setdefault(name, []).extend((s, headers or {}) for s in statuses)

    def pushes(self, name: str | None = None) -> list[Push]:
        with self._lock:
            return [p for p in self._pushes if name is None or p.name == name]

    def delivered(self, name: str) -> list[Push]:
        """Pushes accepted (201) for `name`, decrypted and verified."""
        return [p for p in self.pushes(name) if p.status == 201 and p.message is not None]

    def errors(self) -> list[str]:
        return [f"{p.name}: {e}" for p in self.pushes() for e in p.errors]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        length = int(request.headers.get("Content-Length", "0") or 0)
        body = request.rfile.read(length) if length else b""
        if path.startswith("/stolen"):
            with self._lock:
                self.stolen.append(path)
            self._reply(request, 200, {})
            return
        name = path.removeprefix("/push/")
        with self._lock:
            keys = self._keys.get(name)
            queued = self._answers.get(name)
            status, headers = queued.pop(0) if queued else (201, {})
            expected = self.public_key
        push = Push(name=name, status=status, size=len(body),
                    headers={h: request.headers.get(h, "") for h in
                             ("TTL", "Topic", "Urgency", "Content-Encoding", "Content-Type")})
        try:
            push.claims = verify_vapid(request.headers.get("Authorization", ""), expected,
                                       self.origin)
        except (ValueError, KeyError) as exc:
            push.errors.append(f"VAPID: {exc}")
        if push.headers["Content-Encoding"] != "aes128gcm":
            push.errors.append(f"Content-Encoding {push.headers['Content-Encoding']!r}")
        if len(body) > MAX_MESSAGE:
            push.errors.append(f"body of {len(body)} bytes, over {MAX_MESSAGE}")
        if keys is None:
            push.errors.append("unknown endpoint")
        else:
            try:
                push.message = json.loads(decrypt_aes128gcm(body, keys))
            except Exception as exc:
                push.errors.append(f"decrypt: {exc!r}")
        with self._lock:
            self._pushes.append(push)
        self._reply(request, status, headers)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", "0")
        request.end_headers()
