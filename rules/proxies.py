"""Who the client is behind a reverse proxy: one rule for HTTP requests and feed sockets.

Where it sits: at the edge, before anything counts a client address (connection caps,
per-address rate limits, the feed's socket limits) or reads the scheme (same-origin
checks, the console cookie's `Secure` flag). HTTP requests pass through
web/forwarded.py, feed sockets through feed/raw_ws.py's handshake; both ask `resolve`.

The rule (uvicorn's, so that nothing changes for HTTP): `X-Forwarded-For` and
`X-Forwarded-Proto` are believed only from a peer in STREETFEED_TRUSTED_PROXIES
(addresses and networks). Each proxy appends the address it saw, so the list is
walked from the right, past every trusted hop; the first address not trusted is the
client. What is left of it was written by the client or by proxies we do not know,
and is never read. An entry that is not an IP address ends the walk: the hop that
wrote it is taken as the client (the conservative choice: a proxy sending garbage
shares one count rather than letting arbitrary strings each open a new one).

Pure: strings in, strings out; no sockets, no settings object.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Client", "TrustedProxies", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# X-Forwarded-Proto values we understand; anything else leaves the transport's scheme.
_SECURE = {"https": True, "wss": True, "http": False, "ws": False}


class Client(NamedTuple):
    address: str
    # In the family of the scheme given: "http"/"https" for requests, "ws"/"wss" for sockets.
    scheme: str


def parse_address(value: str) -> IPAddress | None:
    """An address as proxies write it (bare, `v4:port`, `[v6]` or `[v6]:port`); an
    IPv4-mapped IPv6 address is its IPv4 address. None if it is not an IP address."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The peers whose forwarding headers are believed: exact addresses and networks."""

    __slots__ = ("_addresses", "_networks", "_trusts", "entries")

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(e.strip() for e in entries if e.strip())
        addresses: set[IPAddress] = set()
        networks: list[IPNetwork] = []
        for entry in self.entries:
            try:
                if "/" in entry:
                    # strict: `10.0.0.1/8` is a typo for an address or for 10.0.0.0/8, and
                    # guessing which would trust more or fewer peers than meant.
                    networks.append(ipaddress.ip_network(entry, strict=True))
                else:
                    addresses.add(ipaddress.ip_address(entry))
            except ValueError:
                raise ValueError(f"expected an IP address (127.0.0.1) or a network "
                                 f"(10.0.0.0/8), got {entry!r}") from None
        self._addresses = frozenset(addresses)
        self._networks = tuple(networks)
        # Peers repeat (a proxy's address on every request): remember the last few answers.
        self._trusts = functools.lru_cache(maxsize=1024)(self._compute)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not address or not self.entries:
            return False
        return self._trusts(address)

    def _compute(self, address: str) -> bool:
        parsed = parse_address(address)
        return parsed is not None and self.holds(parsed)

    def holds(self, address: IPAddress) -> bool:
        """`address` (parsed) is one of ours."""
        return address in self._addresses or any(
            address.version == net.version and address in net for net in self._networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({list(self.entries)!r})"


def client_address(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address: the right-most entry of `forwarded_for` not itself trusted,
    when the peer is trusted; otherwise the peer."""
    if not forwarded_for or peer not in trusted:
        return peer
    hop = peer
    for entry in reversed(forwarded_for.split(",")):
        address = parse_address(entry)
        if address is None:
            return hop  # garbage: the trusted hop that wrote it is all we know
        hop = str(address)
        if not trusted.holds(address):
            return hop
    return hop  # every hop trusted: the client is one of our proxies (the left-most)


def client_scheme(scheme: str, forwarded_proto: str | None) -> str:
    """`scheme` ("http", "https", "ws" or "wss") made secure or not by a single
    X-Forwarded-Proto value; a list or an unknown value changes nothing. Call it only
    for a trusted peer (resolve does)."""
    if forwarded_proto is None:
        return scheme
    secure = _SECURE.get(forwarded_proto.strip().lower())
    if secure is None:
        return scheme
    if scheme in ("ws", "wss"):
        return "wss" if secure else "ws"
    return "https" if secure else "http"


def resolve(peer: str, scheme: str, forwarded_for: str | None, forwarded_proto: str | None,
            trusted: TrustedProxies) -> Client:
    """The client behind `peer` (the TCP peer's address) and the scheme it used.

    `forwarded_for` is every X-Forwarded-For value of the request joined with ", ",
    `forwarded_proto` likewise; None (or "") when absent. From an untrusted peer both are
    ignored: anyone can send them."""
    if peer not in trusted:
        return Client(peer, scheme)
    return Client(client_address(peer, forwarded_for, trusted),
                  client_scheme(scheme, forwarded_proto))
