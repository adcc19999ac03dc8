"""Which push endpoints the pusher may send to (SSRF), and whether a browser's keys are
keys (DESIGN.md section 9, "Alerts for followed shops").

An endpoint is a URL a stranger hands us and that the pusher then POSTs to: left open, it
would make the pusher reach whatever the stranger names (a cloud's metadata address, a
service on loopback or the private network). So an endpoint is accepted only when it is
`https` on port 443 of a push service the browsers use, or its `host:port` is one the
deployment allows (STREETFEED_PUSH_ALLOWED_HOSTS: a test's receiver, a self-hosted push
service; `http` allowed there). Nothing else: no credentials in the URL, no IP literal
unless allowed so, no fragment, nothing but printable ASCII, and a bounded length. Checked
when a page subscribes and again before every send (a rule or the allowed list may have
changed since). Pure.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from rules.errors import InvalidInput
from schemas.limits import PUSH_ENDPOINT_MAX

__all__ = ["PUSH_SERVICE_HOSTS", "PUSH_SERVICE_SUFFIXES", "PushTarget", "check_endpoint",
           "decode_keys", "parse_allowed_hosts"]

# The hosts whose endpoints the browsers hand out: Chrome, Edge on Android, Opera, Samsung
# Internet (Firebase Cloud Messaging, and its legacy GCM name still in old subscriptions),
# Firefox (Mozilla's autopush).
PUSH_SERVICE_HOSTS = frozenset({"fcm.googleapis.com", "android.googleapis.com",
                                "updates.push.services.mozilla.com"})
# Safari (web.push.apple.com, and its other *.push.apple.com hosts) and Edge on Windows
# (Windows Push Notification Services, a host per data centre: wns2-par02p.notify.windows.com).
PUSH_SERVICE_SUFFIXES = (".push.apple.com", ".notify.windows.com")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_DEFAULT_PORTS = {"https": 443, "http": 80}
# P-256 (secp256r1): y^2 = x^3 - 3x + b over the prime field p (SEC 2, section 2.4.2).
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


@dataclass(frozen=True, slots=True)
class PushTarget:
    """An accepted endpoint: `origin` is the VAPID JWT's `aud` (RFC 8292 section 2)."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}"


def _refused(why: str) -> InvalidInput:
    return InvalidInput(f"push endpoint refused: {why}", code="push_endpoint_not_allowed")


def parse_allowed_hosts(entries: tuple[str, ...]) -> frozenset[tuple[str, int]]:
    """STREETFEED_PUSH_ALLOWED_HOSTS's `host:port` entries (`[::1]:8443` for IPv6), as
    (lowercase host, port); ValueError naming the first that is not one."""
    allowed: set[tuple[str, int]] = set()
    for entry in entries:
        host, sep, port = entry.strip().lower().rpartition(":")
        host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {entry!r}")
        allowed.add((host, int(port)))
    return frozenset(allowed)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _well_known(host: str) -> bool:
    if host in PUSH_SERVICE_HOSTS:
        return True
    for suffix in PUSH_SERVICE_SUFFIXES:
        if host.endswith(suffix):
            labels = host.removesuffix(suffix).split(".")
            return all(_LABEL.match(label) for label in labels)
    return False


def check_endpoint(url: str, allowed: frozenset[tuple[str, int]] = frozenset()) -> PushTarget:
    """`url` as a target the pusher may POST to; InvalidInput `push_endpoint_not_allowed`
    saying why not (never echoing the URL: it is a capability)."""
    if len(url) > PUSH_ENDPOINT_MAX:
        raise _refused(f"longer than {PUSH_ENDPOINT_MAX} characters")
    if not _PRINTABLE.match(url):
        raise _refused("only printable ASCII, no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refused("not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refused("not an https URL")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise _refused("credentials in the URL")
    if parts.fragment or "#" in url:
        raise _refused("a fragment")
    host = (parts.hostname or "").lower()
    if not host or host.endswith("."):
        raise _refused("no host")
    port = _DEFAULT_PORTS[scheme] if port is None else port
    if (host, port) in allowed:
        return PushTarget(url=url, scheme=scheme, host=host, port=port)
    if _is_ip(host):
        raise _refused("an IP address")
    if scheme != "https" or port != 443:
        raise _refused("push services are reached over https on port 443")
    if not _well_known(host):
        raise _refused("not a push service the browsers use")
    return PushTarget(url=url, scheme=scheme, host=host, port=port)


def _b64url(value: str) -> bytes:
    if not _B64URL.match(value):
        # b64decode would skip what is not of its alphabet, and take `+` and `/`.
        raise InvalidInput("keys must be base64url", code="invalid_push_keys")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput("keys must be base64url", code="invalid_push_keys") from None


def decode_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """The browser's public key (an uncompressed point on P-256, 65 bytes) and its auth
    secret (16 bytes), decoded; InvalidInput `invalid_push_keys` otherwise. A point off the
    curve is refused here, not at the first send (an invalid-curve key would also leak bits
    of the sender's ephemeral key to whoever chose it)."""
    point, secret = _b64url(p256dh.rstrip("=")), _b64url(auth.rstrip("="))
    if len(secret) != 16:
        raise InvalidInput("auth must be 16 bytes", code="invalid_push_keys")
    if len(point) != 65 or point[0] != 4:
        raise InvalidInput("p256dh must be an uncompressed P-256 point (65 bytes)",
                           code="invalid_push_keys")
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    if x >= _P or y >= _P or (y * y - (x * x * x - 3 * x + _B)) % _P != 0:
        raise InvalidInput("p256dh is not a point on P-256", code="invalid_push_keys")
    return point, secret
