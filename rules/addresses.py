"""What a client address is counted under by every per-address limit (storage.ratelimit,
the feed's sockets per process, the connection caps).

An ISP hands every phone or household a whole IPv6 /64 and the device picks addresses in
it at will (privacy extensions rotate them daily, an attacker every request): counted one
address at a time, one person is 2^64 clients. So an IPv6 address counts as its /64; an
IPv4-mapped one (`::ffff:192.0.2.1`, a dual-stack socket's view of an IPv4 client) as
that IPv4 address, which it is; an IPv4 address as itself. Anything that is not an IP
address (a test client's name, a proxy's garbage that rules.proxies kept as the hop) is
counted as given: it cannot be grouped, and must not be lumped with others either.

Pure: a string in, a string out.
"""

from __future__ import annotations

import functools
import ipaddress

from rules.proxies import parse_address

__all__ = ["IPV6_PREFIX", "counted_address"]

# The prefix an ISP delegates to one subscriber line at the least (RFC 6177, RIPE-690).
IPV6_PREFIX = 64


@functools.lru_cache(maxsize=4096)
def counted_address(address: str) -> str:
    """`address` as per-address limits count it: an IPv6 address's /64 ("2001:db8:1:2::/64",
    zone id dropped), an IPv4-mapped IPv6 address's IPv4, an IPv4 address as is, anything
    else unchanged."""
    parsed = parse_address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    shift = 128 - IPV6_PREFIX
    return str(ipaddress.IPv6Network((int(parsed) >> shift << shift, IPV6_PREFIX)))
