"""Trusted proxies (issue 12, finding 3): who the client is behind a reverse proxy, by one
rule (rules/proxies.py) for HTTP requests and feed sockets alike.

The pure rule first, then a real server: the "proxy" is a real client bound to a trusted
loopback address that sends forwarding headers, the "outsider" one bound to an address
nobody trusts (one machine, real sockets, as in test_connections.py). The end-to-end
recipe with a real nginx is tests/test_deploy.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from rules.errors import ConfigError
from rules.proxies import Client, TrustedProxies, resolve
from runtime.connections import ConnectionGuard
from runtime.settings import Settings, load_settings
from tests.helpers import add_shop, web_server

STREET = (44.8370, -0.5735)
QUERY = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
# 127.0.0.1 (the default) and a network; 127.0.0.2 is trusted by nobody.
TRUSTED = ("127.0.0.1", "127.0.0.4/30")
PROXY = "127.0.0.1"
PROXY_IN_NETWORK = "127.0.0.5"
OUTSIDER = "127.0.0.2"


# --- The rule --------------------------------------------------------------------------

def test_trusted_set_takes_addresses_and_networks() -> None:
    trusted = TrustedProxies(["127.0.0.1", " 10.0.0.0/8 ", "fd00::/8", "::1", ""])
    for peer in ("127.0.0.1", "10.1.2.3", "fd12::7", "::1", "::ffff:127.0.0.1",
                 "::ffff:10.0.0.9"):
        assert peer in trusted, peer
    for peer in ("127.0.0.2", "11.0.0.1", "fe80::1", "", "unix:/run/x.sock", "localhost"):
        assert peer not in trusted, peer
    assert "127.0.0.1" not in TrustedProxies([])  # nobody trusted
    for bad in ("10.0.0.1/8", "10.0.0.0/33", "localhost", "*", "127.0.0.1:80"):
        with pytest.raises(ValueError, match="expected an IP address"):
            TrustedProxies([bad])


def test_forwarding_headers_are_believed_from_trusted_peers_only() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    # An untrusted peer: whatever it says, the peer and its own scheme.
    assert resolve("203.0.113.5", "http", "198.51.100.1", "https", trusted) == Client(
        "203.0.113.5", "http")
    # A trusted peer: the address it appended, the scheme it saw.
    assert resolve("127.0.0.1", "http", "198.51.100.1", "https", trusted) == Client(
        "198.51.100.1", "https")
    assert resolve("127.0.0.1", "ws", "198.51.100.1", "https", trusted) == Client(
        "198.51.100.1", "wss")
    assert resolve("127.0.0.1", "wss", None, "http", trusted) == Client("127.0.0.1", "ws")
    # No or empty header: the peer itself.
    assert resolve("127.0.0.1", "http", None, None, trusted) == Client("127.0.0.1", "http")
    assert resolve("127.0.0.1", "http", "", "", trusted) == Client("127.0.0.1", "http")


def test_the_right_most_address_not_trusted_is_the_client() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])

    def address(forwarded_for: str) -> str:
        return resolve("127.0.0.1", "http", forwarded_for, None, trusted).address

    # Whatever the client wrote to the left of what our proxies appended is not read.
    assert address("6.6.6.6, 198.51.100.1") == "198.51.100.1"
    assert address("6.6.6.6, 198.51.100.1, 10.0.0.7") == "198.51.100.1"  # past a trusted hop
    # Every hop ours: the left-most (a request from a proxy's own host).
    assert address("10.0.0.8, 10.0.0.7") == "10.0.0.8"
    # Ports and brackets as proxies write them; IPv6 normalised; v4-mapped as v4.
    assert address("198.51.100.1:5555") == "198.51.100.1"
    assert address("[2001:DB8::1]:443") == "2001:db8::1"
    assert address("2001:db8:0::1") == "2001:db8::1"
    assert address("::ffff:198.51.100.1") == "198.51.100.1"
    # Not an address: the trusted hop that wrote it is all that is known.
    assert address("unknown") == "127.0.0.1"
    assert address("198.51.100.1, garbage, 10.0.0.7") == "10.0.0.7"


def test_forwarded_proto_must_be_one_known_value() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    for proto, scheme in (("HTTPS", "https"), (" wss ", "https"), ("http", "http"),
                          ("https, http", "http"), ("ftp", "http"), ("", "http")):
        assert resolve("127.0.0.1", "http", None, proto, trusted).scheme == scheme, proto


def test_setting_is_checked_at_start() -> None:
    default = load_settings({})
    assert default.trusted_proxies == ("127.0.0.1",)
    several = load_settings({"STREETFEED_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.10"})
    assert several.trusted_proxies == ("10.0.0.0/8", "192.168.1.10")
    assert load_settings({"STREETFEED_TRUSTED_PROXIES": ""}).trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"STREETFEED_TRUSTED_PROXIES.*'10\.0\.0\.1/8'"):
        load_settings({"STREETFEED_TRUSTED_PROXIES": "10.0.0.1/8"})


def test_connection_caps_exempt_trusted_networks() -> None:
    guard = ConnectionGuard(max_connections=10, max_per_address=1, head_timeout_s=1,
                            body_idle_timeout_s=1, body_min_bytes_per_s=100,
                            exempt=TrustedProxies(["10.0.0.0/8"]))
    assert guard.admit("a", "10.0.0.1") is None
    assert guard.admit("b", "10.0.0.1") is None  # a proxy: its clients share its address
    assert guard.admit("c", "11.0.0.1") is None
    assert guard.admit("d", "11.0.0.1") == "too_many_connections"


# --- Feed sockets on a real server -------------------------------------------------------

async def _feed(stack: contextlib.AsyncExitStack, base: str, address: str,
                forwarded_for: str | None = None, proto: str | None = None,
                origin: str | None = None) -> ClientConnection | int:
    """A real feed socket from `address`, kept open on `stack`; or the refusal's status."""
    headers = {}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    try:
        return await stack.enter_async_context(connect(
            f"{base}/ws/feed?{QUERY}", additional_headers=headers, origin=origin,  # type: ignore[arg-type]
            local_addr=(address, 0)))
    except InvalidStatus as refused:
        return refused.response.status_code


def _opened(result: ClientConnection | int) -> bool:
    return not isinstance(result, int)


async def test_open_feed_sockets_are_counted_per_client_behind_a_trusted_proxy(
        redis: Redis, settings: Settings) -> None:
    """Issue 12: behind one proxy the whole site had 500 open feed sockets per process."""
    settings = settings.with_(trusted_proxies=TRUSTED, max_sockets_per_address=2)
    async with web_server(settings) as web, contextlib.AsyncExitStack() as stack:
        # Through the proxy: each client has its own two...
        for client in ("198.51.100.1", "198.51.100.2"):
            for _ in range(2):
                assert _opened(await _feed(stack, web.ws, PROXY, client)), client
        # ...and no more: the address the proxy appended, not what the client forged.
        assert await _feed(stack, web.ws, PROXY, "198.51.100.1") == 429
        assert await _feed(stack, web.ws, PROXY, "198.51.100.2, 198.51.100.1") == 429
        # A client behind two trusted proxies, one of them in a trusted network.
        assert _opened(await _feed(stack, web.ws, PROXY_IN_NETWORK,
                                   "198.51.100.1, 198.51.100.3, 127.0.0.6"))
        assert web.state.gateway.per_address == {"198.51.100.1": 2, "198.51.100.2": 2,
                                                 "198.51.100.3": 1}
        # Forged by a peer nobody trusts: the peer is counted, whatever it says.
        for forged in ("198.51.100.4", "198.51.100.5"):
            assert _opened(await _feed(stack, web.ws, OUTSIDER, forged))
        assert await _feed(stack, web.ws, OUTSIDER, "198.51.100.6") == 429
        assert web.state.gateway.per_address[OUTSIDER] == 2
        for forged in ("198.51.100.4", "198.51.100.5", "198.51.100.6"):
            assert forged not in web.state.gateway.per_address
    assert not web.state.gateway.per_address  # every socket closed was uncounted


async def test_new_feed_sockets_per_minute_are_counted_per_client_behind_a_trusted_proxy(
        redis: Redis, settings: Settings) -> None:
    """Issue 12: behind one proxy the whole site had 120 new feed sockets a minute."""
    settings = settings.with_(trusted_proxies=TRUSTED, address_sockets_per_minute=2)
    async with web_server(settings) as web:
        for client in ("198.51.100.1", "198.51.100.2"):
            for _ in range(2):
                async with contextlib.AsyncExitStack() as stack:
                    assert _opened(await _feed(stack, web.ws, PROXY, client)), client
        async with contextlib.AsyncExitStack() as stack:
            assert await _feed(stack, web.ws, PROXY, "198.51.100.1") == 429
            assert _opened(await _feed(stack, web.ws, PROXY_IN_NETWORK, "198.51.100.3"))
            # A forged header from an untrusted peer is not a fresh allowance.
            assert _opened(await _feed(stack, web.ws, OUTSIDER, "198.51.100.4"))
            assert _opened(await _feed(stack, web.ws, OUTSIDER, "198.51.100.5"))
            assert await _feed(stack, web.ws, OUTSIDER, "198.51.100.6") == 429


async def test_feed_origin_check_follows_the_scheme_the_proxy_saw(
        redis: Redis, settings: Settings) -> None:
    """Behind a TLS proxy the socket is `wss` even though the proxy speaks `ws` to us: a
    page served over plain http on the same host name may not open it."""
    async with web_server(settings.with_(trusted_proxies=TRUSTED)) as web, \
            contextlib.AsyncExitStack() as stack:
        host = f"127.0.0.1:{web.port}"
        assert await _feed(stack, web.ws, PROXY, "198.51.100.1", "https",
                           origin=f"http://{host}") == 403
        assert _opened(await _feed(stack, web.ws, PROXY, "198.51.100.1", "https",
                                   origin=f"https://{host}"))
        # Without a proxy (or one nobody trusts) the scheme is the connection's.
        assert _opened(await _feed(stack, web.ws, OUTSIDER, None, "https",
                                   origin=f"http://{host}"))


# --- HTTP on a real server: the same rule -------------------------------------------------

@contextlib.asynccontextmanager
async def _clients(base: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for address in (PROXY, PROXY_IN_NETWORK, OUTSIDER):
            transport = httpx.AsyncHTTPTransport(local_address=address)
            clients[address] = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, transport=transport))
        yield clients


async def test_http_requests_per_address_follow_the_same_rule(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(trusted_proxies=TRUSTED, address_requests_per_minute=2)
    async with web_server(settings) as web, _clients(web.http) as clients:
        url = f"/api/v1/feed?{QUERY}"

        async def status(address: str, forwarded_for: str) -> int:
            response = await clients[address].get(url, headers={
                "X-Forwarded-For": forwarded_for})
            return response.status_code

        # Requests per address: per forwarded client behind a trusted proxy (a network too).
        assert [await status(PROXY, "198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert await status(PROXY_IN_NETWORK, "198.51.100.2") == 200
        assert [await status(OUTSIDER, f"198.51.100.{i}") for i in (3, 4, 5)] == [
            200, 200, 429]


async def test_console_cookie_follows_the_scheme_the_proxy_saw(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings.with_(trusted_proxies=TRUSTED)) as web, \
            _clients(web.http) as clients:
        # The console cookie is Secure when the client reached the proxy over TLS, and the
        # same-origin check of a cookie write compares with the scheme the client used.
        host = f"127.0.0.1:{web.port}"
        sign_in = json.dumps({"shop_id": shop.id, "token": shop.token})

        async def session(address: str, proto: str, origin: str) -> httpx.Response:
            return await clients[address].post("/api/v1/session", content=sign_in, headers={
                "Content-Type": "application/json", "Origin": origin,
                "X-Forwarded-Proto": proto, "X-Forwarded-For": "198.51.100.9"})

        tls = await session(PROXY, "https", f"https://{host}")
        assert tls.status_code == 200, tls.text
        assert "secure" in tls.headers["set-cookie"].lower()
        assert (await session(PROXY, "https", f"http://{host}")).status_code == 403
        # Forged by an untrusted peer: its own plain-http connection, so no Secure.
        plain = await session(OUTSIDER, "https", f"http://{host}")
        assert plain.status_code == 200, plain.text
        assert "secure" not in plain.headers["set-cookie"].lower()
        assert (await session(OUTSIDER, "https", f"https://{host}")).status_code == 403


async def test_connection_cap_exempts_a_trusted_network(redis: Redis,
                                                        settings: Settings) -> None:
    """A proxy in a trusted network holds many connections for its clients; an address
    nobody trusts is capped."""
    settings = settings.with_(trusted_proxies=TRUSTED, max_sockets_per_address=1)
    cap = settings.max_connections_per_address
    async with web_server(settings) as web:
        held: list[asyncio.StreamWriter] = []
        try:
            for address, expected in ((PROXY_IN_NETWORK, b"HTTP/1.1 200"),
                                      (OUTSIDER, b"HTTP/1.1 503")):
                for _ in range(cap):
                    _, writer = await asyncio.open_connection(
                        "127.0.0.1", web.port, local_addr=(address, 0))
                    held.append(writer)
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", web.port, local_addr=(address, 0))
                held.append(writer)
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(12), 10)
                assert answer == expected, address
        finally:
            for writer in held:
                writer.close()
