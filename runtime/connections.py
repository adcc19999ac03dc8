"""Connection hygiene: who may hold a connection open, and for how long.

Counted when a TCP connection is made, before any byte is parsed: open
connections per client address and per process are capped (the process answers
503 and closes instead of running out of file descriptors), and each connection
must deliver its request head within `head_timeout_s` and its body at a minimum
rate (web/http_protocol.py enforces the times; feed/raw_ws.py releases feed
sockets, counted as HTTP before their upgrade). Addresses of trusted proxies are
not capped one by one: behind a proxy every client shares its address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field

from rules.addresses import counted_address
from rules.errors import error_body
from rules.proxies import TrustedProxies
from runtime.settings import Settings

__all__ = ["ConnectionGuard", "refusal_response"]


@dataclass
class ConnectionGuard:
    max_connections: int
    max_per_address: int
    head_timeout_s: float
    body_idle_timeout_s: float
    body_min_bytes_per_s: int
    write_stall_timeout_s: float = 30.0
    # A request head past this many bytes is answered 431 and the connection closed: the
    # HTTP parser keeps a head in memory until it ends (a 64 MiB header was accepted).
    max_head_bytes: int = 32 * 1024
    # Peers not capped per address (trusted proxies: addresses and networks).
    exempt: Container[str] = frozenset()
    # transport (any hashable connection handle) -> client address
    open: dict[object, str] = field(default_factory=dict)
    per_address: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings,
                      trusted: TrustedProxies | None = None) -> ConnectionGuard:
        return cls(max_connections=settings.max_connections,
                   max_per_address=settings.max_connections_per_address,
                   head_timeout_s=settings.head_timeout_s,
                   body_idle_timeout_s=settings.body_idle_timeout_s,
                   body_min_bytes_per_s=settings.body_min_bytes_per_s,
                   write_stall_timeout_s=settings.write_stall_timeout_s,
                   max_head_bytes=settings.max_head_bytes,
                   exempt=(trusted if trusted is not None
                           else TrustedProxies(settings.trusted_proxies)))

    def admit(self, connection: object, address: str) -> str | None:
        """Count a new connection (an IPv6 peer under its /64: rules.addresses); or the
        code of the refusal (it is then not counted)."""
        counted = counted_address(address)
        if len(self.open) >= self.max_connections:
            code = "server_busy"
        elif address not in self.exempt and self.per_address[counted] >= self.max_per_address:
            code = "too_many_connections"
        else:
            self.open[connection] = counted
            self.per_address[counted] += 1
            return None
        self.refused[code] += 1
        return code

    def release(self, connection: object) -> None:
        """The connection ended (idempotent: an upgraded connection ends once)."""
        address = self.open.pop(connection, None)
        if address is not None:
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]

    def body_too_slow(self, received: int, elapsed_s: float, idle_s: float) -> bool:
        """A request body that stalls, or trickles in below the minimum rate once the first
        `body_idle_timeout_s` have passed (a grace for slow starts on mobile networks)."""
        if idle_s > self.body_idle_timeout_s:
            return True
        grace = self.body_idle_timeout_s
        return elapsed_s > grace and received < (elapsed_s - grace) * self.body_min_bytes_per_s


_MESSAGES = {
    "server_busy": "this server has too many open connections; retry shortly",
    "too_many_connections": "too many open connections from this address",
    "headers_too_large": "the request's head (request line and headers) is too large",
}


def refusal_response(code: str) -> bytes:
    """A complete HTTP/1.1 answer that ends the connection, written without uvicorn: 503
    for a connection refused before its request is read, 431 for a head too large."""
    body = error_body(code, _MESSAGES[code])
    status = (b"431 Request Header Fields Too Large" if code == "headers_too_large"
              else b"503 Service Unavailable\r\nretry-after: 5")
    head = (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"connection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
    return head + body
