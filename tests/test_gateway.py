"""Gateway behaviour under load and at the edges: slow sockets, pings, many clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import socket

import msgspec
from redis.asyncio import Redis

from feed.hub import Hub
from feed.raw_ws import RawFrameProtocol
from rules.geo import haversine_m
from runtime.settings import Settings
from schemas.feed import FeedEntry
from storage import keys
from tests.helpers import HubSink, feed_client, wait_for, web_server

STREET = (44.8370, -0.5735)


def _big_post(i: int) -> bytes:
    post = {"id": f"p_{i:016d}", "kind": "new_arrival", "title": f"post {i}", "text": "x" * 60_000,
            "posted_at": "2026-11-26T10:00:00Z", "expires_at": "2026-11-26T23:00:00Z",
            "shop": {"id": "big-shop", "name": "Big", "category": "c", "lat": STREET[0],
                     "lon": STREET[1]}}
    entry = FeedEntry(type="post", id=post["id"], kind="new_arrival", lat=STREET[0],
                      lon=STREET[1], post=msgspec.Raw(json.dumps(post).encode()))
    return msgspec.json.encode(entry)


async def _stalled_client(port: int, query: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /ws/feed?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def test_stalled_socket_is_closed_and_others_keep_receiving(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(gateway_socket_buffer_max=256 * 1024)
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
    async with web_server(settings) as web, feed_client(web.ws, *STREET) as healthy:
        with contextlib.closing(await _stalled_client(web.port, query)):
            hub = web.state.hub
            await wait_for(lambda: len(hub.index) == 2, message="both subscribed")
            total = 200  # ~12 MB: far more than socket buffers and the per-socket limit
            for i in range(total):
                await redis.xadd(keys.feed_stream(settings.region), {"d": _big_post(i)})
            await wait_for(lambda: hub.dropped_slow == 1, 10, "the stalled socket to be dropped")
            assert len(hub.index) == 1
            await wait_for(lambda: len(healthy.posts()) == total, 20,
                           "every post on the healthy one")
            assert healthy.close_code is None


async def test_ping_after_snapshot_carries_cursor(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(gateway_ping_interval_s=0.2)
    async with web_server(settings) as web, feed_client(web.ws, *STREET) as client:
        await client.wait_ready(pings=3)
        pings = client.of_type("ping")
        assert all(p["cursor"] == "0-0" for p in pings)
        await redis.xadd(keys.feed_stream(settings.region), {"d": _big_post(1)})
        await wait_for(lambda: len(client.posts()) == 1)
        at = next(i for i, f in enumerate(client.frames) if f["type"] == "post")
        cursor = client.frames[at]["cursor"]
        await wait_for(lambda: any(f["type"] == "ping" for f in client.frames[at + 1:]))
        ping = next(f for f in client.frames[at + 1:] if f["type"] == "ping")
        assert ping["cursor"] == cursor


async def test_hundreds_of_clients_get_exactly_their_posts(redis: Redis,
                                                           settings: Settings) -> None:
    """Many sockets on one street: each gets every post within its radius, once."""
    clients = []
    async with web_server(settings) as web, contextlib.AsyncExitStack() as stack:
        for i in range(200):
            lat = STREET[0] + (i % 20) * 0.0005  # a 1 km strip of the street
            clients.append((lat, await stack.enter_async_context(
                feed_client(web.ws, lat, STREET[1], radius_m=150))))
        posts = [(STREET[0] + j * 0.00025, f"p_{j:016d}") for j in range(40)]
        for lat, post_id in posts:
            post = {"id": post_id, "kind": "new_arrival", "title": "t",
                    "posted_at": "2026-11-26T10:00:00Z", "expires_at": "2026-11-26T23:00:00Z",
                    "shop": {"id": "s", "name": "S", "category": "c", "lat": lat,
                             "lon": STREET[1]}}
            entry = FeedEntry(type="post", id=post_id, kind="new_arrival", lat=lat,
                              lon=STREET[1], post=msgspec.Raw(json.dumps(post).encode()))
            await redis.xadd(keys.feed_stream(settings.region),
                             {"d": msgspec.json.encode(entry)})

        def expected(lat: float) -> list[str]:
            return [pid for plat, pid in posts
                    if haversine_m(lat, STREET[1], plat, STREET[1]) <= 150]

        hub = web.state.hub
        await wait_for(lambda: hub.position is not None and hub.position != "0-0")
        await wait_for(lambda: all(c.post_ids() == expected(lat) for lat, c in clients), 10,
                       "every client to have exactly its posts")
        assert hub.deliveries == sum(len(expected(lat)) for lat, _ in clients)


def _entry(post_id: str, title: str, edit: bool = False) -> bytes:
    post = {"id": post_id, "kind": "new_arrival", "title": title,
            "shop": {"id": "s", "name": "S", "category": "c", "lat": STREET[0], "lon": STREET[1]}}
    return msgspec.json.encode(FeedEntry(type="post", id=post_id, kind="new_arrival",
                                         lat=STREET[0], lon=STREET[1],
                                         post=msgspec.Raw(msgspec.json.encode(post)),
                                         edit=edit))


def test_entries_read_together_reach_each_socket_in_one_write(settings: Settings) -> None:
    """A socket near several posts of one XREAD gets their frames in one write (the
    transport's send is the gateway's largest cost), in stream order, each with its own
    cursor; a socket that wants none of them gets nothing."""
    hub = Hub(settings)
    region = settings.region
    hub.set_position(region, "0-0")

    def subscriber(lat: float, lon: float) -> HubSink:
        sink = HubSink()
        conn = hub.connect(sink)
        conn.sub.place(lat, lon, 300, None)
        conn.regions = [region]
        conn.regions_key = hub.regions_key(conn.regions)
        hub.subscribe(conn)
        assert conn.go_live()
        return sink

    near, far = subscriber(*STREET), subscriber(STREET[0] + 0.05, STREET[1])
    hub.dispatch_many(region, [("1000-0", _entry("p_1", "fraises")),
                               ("1001-0", b"not an entry"),  # skipped, as one by one
                               ("1002-0", _entry("p_2", "cerises"))])
    assert len(near.frames) == 1
    assert [(b["post"]["id"], b["cursor"]) for b in near.bodies()] == [("p_1", "1000-0"),
                                                                       ("p_2", "1002-0")]
    assert far.frames == []
    assert hub.positions[region] == "1002-0"
    assert hub.reach == {(region, "p_1"): [1, 0], (region, "p_2"): [1, 0]}


def test_a_post_published_again_after_a_redis_crash_reaches_nobody_twice(
        settings: Settings) -> None:
    """Redis fsyncs its AOF once a second: after kill -9 the enricher publishes the posts of
    that last second again, under new feed ids. Sockets that had them are skipped; a socket
    that subscribed since (its snapshot came from the restored Redis) gets them."""
    hub = Hub(settings)
    region = settings.region
    hub.set_position(region, "0-0")

    def subscriber() -> HubSink:
        sink = HubSink()
        conn = hub.connect(sink)
        conn.sub.place(*STREET, 300, None)
        conn.regions = [region]
        conn.regions_key = hub.regions_key(conn.regions)
        hub.subscribe(conn)
        assert conn.go_live()
        return sink

    early = subscriber()
    hub.dispatch(region, "1000-0", _entry("p_1", "fraises"))
    late = subscriber()
    hub.dispatch(region, "2000-0", _entry("p_1", "fraises"))  # published again
    assert early.posts() == [("p_1", "fraises")]
    assert late.posts() == [("p_1", "fraises")]
    # An edit (same id, new content) is news for everyone.
    hub.dispatch(region, "3000-0", _entry("p_1", "fraises -30 %", edit=True))
    assert early.posts()[-1] == late.posts()[-1] == ("p_1", "fraises -30 %")
    # Reach counts the first delivery only: not the replay, not the edit (issue 14).
    assert hub.reach == {(region, "p_1"): [1, 0]}
    # A replay from a cursor tells the same apart: had the edit at 3000-0, not at 2999-0.
    again = msgspec.json.decode(_entry("p_1", "fraises -30 %"), type=FeedEntry)
    assert hub.sent_before(region, again, "3000-0")
    assert not hub.sent_before(region, again, "2999-0")


def _reaches_a_request(root: object) -> bool:
    """Whether a websockets Request (a parsed handshake) is reachable from `root`, through
    anything but modules, classes, functions and loggers."""
    import logging
    import types

    from websockets.http11 import Request

    skip = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
            logging.Logger, logging.LoggerAdapter)
    seen, todo = {id(root)}, [root]
    while todo:
        obj = todo.pop()
        if isinstance(obj, Request):
            return True
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, skip):
                seen.add(id(ref))
                todo.append(ref)
    return False


async def test_a_live_feed_socket_keeps_nothing_of_its_handshake(redis: Redis,
                                                                 settings: Settings) -> None:
    """websockets' handshake parser would keep each socket's request (headers and all) for
    the socket's life; feed.raw_ws reads frames with a protocol that never saw the
    handshake once the socket is open, and client frames are still read."""
    async with web_server(settings) as web, feed_client(web.ws, *STREET) as client:
        await client.wait_ready()
        gc.collect()  # sockets of earlier tests, closed, may still sit in cycles
        served = [o for o in gc.get_objects() if isinstance(o, RawFrameProtocol)
                  and o.native is not None and not o.transport.is_closing()]
        assert served
        assert all(p.handshake is None and p.conn is not None for p in served)
        assert not any(_reaches_a_request(p.conn) for p in served)
        await client.send({"type": "subscribe", "lat": STREET[0] + 0.01, "lon": STREET[1],
                           "radius_m": 300})
        await wait_for(lambda: len(client.of_type("reset")) == 1, message="the move answered")


def _server_side(obj: object) -> bool:
    """Whether `obj` is one of the product's objects of a served socket or uvicorn's (the
    test's own clients live in this process too). Left out: the two cycles of the
    libraries under them that only their private attributes could break (asyncio's
    transport, websockets' parser: runtime/collector.py), which hold none of these."""
    return type(obj).__module__.split(".")[0] in ("feed", "web", "uvicorn")


async def test_closed_feed_sockets_are_freed_without_the_cyclic_collector(
        redis: Redis, settings: Settings) -> None:
    """A closed socket's own objects are in no reference cycle (runtime/collector.py):
    reference counting frees them, so the cyclic collector does not walk closed sockets,
    and what was frozen while the socket was open (gc.freeze, as the web process does) is
    not kept. Before, uvicorn's HTTP protocol after the upgrade, Connection <-> Subscriber
    and through them the protocols and their buffers were left to the collector."""
    async with web_server(settings) as web:
        # Whatever start-up or earlier tests left, before the collector is turned off.
        gc.collect()
        gc.disable()
        try:
            for _ in range(2):
                async with contextlib.AsyncExitStack() as sockets:
                    clients = [await sockets.enter_async_context(
                        feed_client(web.ws, STREET[0] + i * 1e-4, STREET[1], kinds=kinds))
                        for i in range(10) for kinds in (None, "flash_offer")]
                    # A move and a message refused: the paths a socket may have taken.
                    await clients[0].send({"type": "subscribe", "lat": STREET[0],
                                           "lon": STREET[1] + 0.01, "radius_m": 300})
                    await clients[1].send({"type": "nonsense"})
                    moved, refused = clients[0], clients[1]
                    await wait_for(lambda: len(moved.of_type("reset")) == 1  # noqa: B023
                                   and bool(refused.of_type("error")),  # noqa: B023
                                   message="answers")
                await wait_for(lambda: not any(isinstance(c, RawFrameProtocol) for c in
                                               web.server.server_state.connections)
                               and not web.state.hub.index, message="sockets closed")
                gc.set_debug(gc.DEBUG_SAVEALL)
                try:
                    gc.collect()
                    left = sorted({type(o).__qualname__ for o in gc.garbage if _server_side(o)})
                finally:
                    gc.set_debug(0)
                    gc.garbage.clear()
                assert left == []
        finally:
            gc.enable()
