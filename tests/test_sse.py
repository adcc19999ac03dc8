"""GET /api/v1/feed/stream (DESIGN.md section 9, "Server-Sent Events fallback"), against
real uvicorn, real Valkey, real `streetfeed web` processes and real HTTP clients: the same
frames as WS /ws/feed, its filters, resume by Last-Event-ID across a restart, its limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime.settings import Settings
from schemas.feed import FeedEntry
from storage import keys
from tests.helpers import (
    Service,
    add_shop,
    arrival,
    auth,
    enricher,
    feed_client,
    flash,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
    web_server,
)
from tests.test_gateway import _big_post
from tests.test_producers import MILL, named

STREET = (44.8370, -0.5735)
QUERY = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"


@dataclass
class SseClient:
    """A real HTTP client reading an event stream as EventSource does (spec parsing)."""

    events: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, response: httpx.Response) -> None:
        name, data, event_id = "message", [], None
        try:
            async for line in response.aiter_lines():
                if not line:
                    if event_id is not None:
                        self.last_id = event_id
                    if data:
                        self.events.append((name, event_id, json.loads("\n".join(data))))
                    name, data, event_id = "message", [], None
                    continue
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if not key:
                    self.comments.append(value)
                elif key == "event":
                    name = value
                elif key == "data":
                    data.append(value)
                elif key == "id":
                    event_id = value
                elif key == "retry":
                    self.retry = int(value)
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def frames(self) -> list[dict[str, Any]]:
        return [data for _, _, data in self.events]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames() if f["type"] == kind]

    def post_ids(self) -> list[str]:
        return [f["post"]["id"] for f in self.of_type("post")]

    async def wait_ready(self) -> None:
        await wait_for(lambda: bool(self.of_type("ping")) or self.ended.is_set(),
                       message="the snapshot's end")


@contextlib.asynccontextmanager
async def sse_client(base: str, query: str = QUERY, last_event_id: str | None = None,
                     wait_ready: bool = True) -> AsyncIterator[SseClient]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as http, \
            http.stream("GET", f"/api/v1/feed/stream?{query}", headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        client = SseClient(headers=dict(response.headers))
        task = asyncio.create_task(client.read(response))
        try:
            if wait_ready:
                await client.wait_ready()
            yield client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _same_as_ws(sse: SseClient, ws_frames: list[dict[str, Any]]) -> None:
    """Every frame the socket got, in order, is an event of the stream: its type is the
    event's name, its JSON the event's data, and from the ping that ends the snapshot or
    replay on, its cursor the event's id (before it, no id: see _held_after_cut)."""
    assert sse.frames() == ws_frames
    pinged = False
    for name, event_id, data in sse.events:
        assert name == data["type"]
        pinged = pinged or name == "ping"
        assert event_id == (data.get("cursor") if pinged else None)


def _held_after_cut(sse: SseClient, received: int, held: str | None) -> str | None:
    """The last event id an EventSource holds (and resumes with) once it has received the
    stream's first `received` events, starting from `held`: an event without `id:` leaves
    it as it was."""
    for _, event_id, _ in sse.events[:received]:
        if event_id is not None:
            held = event_id
    return held


# Keep-alive pings come on each connection's own turn (one slice of the sockets a second):
# a slow run pings one of a socket-and-stream pair and not yet the other, and the frames
# compared differ by a ping. Tests comparing the two whole leave keep-alives out.
_NO_KEEPALIVE = {"gateway_ping_interval_s": 3600.0}


async def test_the_stream_carries_the_socket_s_frames(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(**_NO_KEEPALIVE)
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        kept = await send_post(http, shop, arrival("Comté 24 mois"))
        await wait_for(lambda: _in_feed(http, kept.json()["id"]), message="first post live")
        async with feed_client(web.ws, *STREET) as ws, sse_client(web.http) as sse:
            assert sse.headers["content-type"] == "text/event-stream"
            assert sse.headers["cache-control"] == "no-store"
            assert sse.headers["x-accel-buffering"] == "no"
            assert sse.retry == settings.sse_retry_ms
            offer = (await send_post(http, shop, flash("-20 % sur les chèvres"))).json()["id"]
            gone = (await send_post(http, shop, arrival("Brie de Meaux"))).json()["id"]
            await wait_for(lambda: gone in sse.post_ids() and gone in ws.post_ids())
            withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{gone}",
                                          headers=auth(shop))
            assert withdrawn.status_code == 200
            # `expired` as the scheduler publishes it, and `status` as the liveness check
            # tells every subscriber.
            await redis.xadd(keys.feed_stream(settings.region), {"d": msgspec.json.encode(
                FeedEntry(type="expired", id=offer, lat=STREET[0], lon=STREET[1]))})
            await wait_for(lambda: bool(ws.of_type("expired") and sse.of_type("expired")))
            web.state.hub.set_down({settings.region: "2026-11-30T10:00:00Z"})
            web.state.hub.set_down({})
            await wait_for(lambda: len(sse.of_type("status")) >= 2 and len(sse.frames()) ==
                           len(ws.frames), message="the same number of frames")
            _same_as_ws(sse, ws.frames)
            assert {f["type"] for f in sse.frames()} == {"post", "ping", "withdrawn",
                                                          "expired", "status"}
            assert sse.of_type("withdrawn")[0]["id"] == gone
            assert sse.last_id == ws.cursor
        # A cursor that is not one, or one beyond what is kept: `reset` and a snapshot, as
        # on the socket.
        for stale in ("zzz", "1-0"):
            await redis.xtrim(keys.feed_stream(settings.region), maxlen=1, approximate=False)
            async with feed_client(web.ws, *STREET, cursor=stale) as ws, \
                    sse_client(web.http, last_event_id=stale) as sse:
                await wait_for(lambda: len(sse.frames()) == len(ws.frames))
                assert sse.frames()[0]["type"] == "reset"
                assert kept.json()["id"] in sse.post_ids()
                _same_as_ws(sse, ws.frames)


async def test_entries_read_in_one_xread_are_events_of_their_own(redis: Redis,
                                                                   settings: Settings) -> None:
    """The hub writes the frames of one XREAD to a socket at once (Hub.dispatch_many); a
    stream makes each an event with its own id. Entries added in one transaction are
    read together: they once reached the stream as one frame, whose decoding failed and
    restarted the region's reader for every client."""
    settings = settings.with_(**_NO_KEEPALIVE)
    async with web_server(settings) as web, sse_client(web.http) as sse, \
            feed_client(web.ws, *STREET) as ws:
        async with redis.pipeline(transaction=True) as pipe:
            for i in range(3):
                pipe.xadd(keys.feed_stream(settings.region), {"d": _big_post(i)})
            ids = [entry_id.decode() for entry_id in await pipe.execute()]
        posts = [f"p_{i:016d}" for i in range(3)]
        await wait_for(lambda: sse.post_ids() == posts and ws.post_ids() == posts,
                       message="the three posts on both")
        assert [event_id for kind, event_id, _ in sse.events if kind == "post"] == ids
        _same_as_ws(sse, ws.frames)


async def _in_feed(http: httpx.AsyncClient, post_id: str) -> bool:
    feed = (await http.get(f"/api/v1/feed?{QUERY}")).json()
    return post_id in [p["id"] for p in feed["posts"]]


async def test_a_stream_cut_during_its_snapshot_or_replay_resumes_without_loss(
        redis: Redis, settings: Settings) -> None:
    # An EventSource reconnects by itself with the last id it saw. Events of a snapshot
    # used to carry the snapshot's cursor: cut after its first post, a client resumed
    # after that cursor and got no more than a ping, the rest of the snapshot lost. Only
    # the ping that ends a snapshot or replay (and what follows) carries an id now.
    shop = await add_shop(redis, settings, "Caviste", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        async with sse_client(web.http) as empty:
            older = empty.last_id  # an id held from an earlier visit: before the posts
        assert older is not None
        ids = [(await send_post(http, shop, arrival(f"Cuvée n°{i}"))).json()["id"]
               for i in range(5)]
        await wait_for(lambda: _in_feed(http, ids[-1]), message="the posts live")
        # A snapshot (no id yet), a reset and a snapshot (a cursor that is not one), a
        # replay (the older cursor).
        for first_id, opening in ((None, "post"), ("zzz", "reset"), (older, "post")):
            async with sse_client(web.http, last_event_id=first_id) as sse:
                names = [name for name, _, _ in sse.events]
                assert names[0] == opening
                ping = names.index("ping")
                assert sorted(sse.post_ids()) == sorted(ids)
                assert all(event_id is None for _, event_id, _ in sse.events[:ping])
                assert sse.events[ping][1] == sse.events[ping][2]["cursor"]
                assert sse.last_id == sse.events[ping][2]["cursor"]
            # Cut after each event before the ping: resumed with the id it then holds,
            # the client has every post.
            for received in range(1, ping + 1):
                held = _held_after_cut(sse, received, first_id)
                got = {d["post"]["id"] for _, _, d in sse.events[:received]
                       if d["type"] == "post"}
                async with sse_client(web.http, last_event_id=held) as resumed:
                    assert got | set(resumed.post_ids()) == set(ids), (first_id, received)
                    assert resumed.last_id == sse.last_id


async def test_filters_are_the_socket_s(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(**_NO_KEEPALIVE)
    near = await add_shop(redis, settings, "Boulangerie", *STREET)
    far = await add_shop(redis, settings, "Cave", STREET[0] + 0.01, STREET[1])  # ~1.1 km
    queries = [QUERY, QUERY + "&kinds=flash_offer", QUERY + "&local=1",
               f"lat={STREET[0]}&lon={STREET[1]}&radius_m=2000&kinds=new_arrival,flash_offer"]
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, contextlib.AsyncExitStack() as stack:
        mill = await named(http, near, "Moulin", "Saint-Émilion", *MILL)
        pairs = []
        for query in queries:
            ws = await stack.enter_async_context(feed_client(
                web.ws, *STREET, **dict(p.split("=") for p in query.split("&")[2:])))
            pairs.append((await stack.enter_async_context(sse_client(web.http, query)), ws))
        ids = {}
        for name, shop, body in [("near_arrival", near, arrival("Baguettes")),
                                 ("near_local", near, arrival("Pain du moulin",
                                                              producer_ids=[mill])),
                                 ("near_offer", near, flash("-10 % croissants")),
                                 ("far_offer", far, flash("-15 % Bordeaux"))]:
            answer = await send_post(http, shop, body)
            assert answer.status_code == 202, answer.text
            ids[name] = answer.json()["id"]
        last = ids["far_offer"]
        await wait_for(lambda: last in pairs[3][0].post_ids() and last in pairs[3][1].post_ids())
        # The last post reached the 2 km one: earlier ones reached every stream by now.
        await wait_for(lambda: all(len(s.frames()) == len(w.frames) for s, w in pairs))
        for sse, ws in pairs:
            _same_as_ws(sse, ws.frames)
        assert [set(s.post_ids()) for s, _ in pairs] == [
            {ids["near_arrival"], ids["near_local"], ids["near_offer"]},
            {ids["near_offer"]},
            {ids["near_local"]},
            set(ids.values())]


@pytest.mark.parametrize("query", ["radius_m=500", f"lat=91&lon={STREET[1]}&radius_m=500",
                                   f"lat={STREET[0]}&lon={STREET[1]}&radius_m=0",
                                   QUERY + "&kinds=gossip", QUERY + "&local=maybe",
                                   QUERY + "&color=red"])
async def test_a_bad_query_is_the_socket_s_400_before_any_event(
        redis: Redis, settings: Settings, query: str) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        answer = await http.get(f"/api/v1/feed/stream?{query}")
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"]["code"] == "invalid_subscription"
        assert len(web.state.gateway.per_address) == 0


async def test_streams_and_sockets_share_the_per_address_cap(redis: Redis,
                                                             settings: Settings) -> None:
    settings = settings.with_(max_sockets_per_address=3)
    async with web_server(settings) as web, contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(feed_client(web.ws, *STREET))
        await stack.enter_async_context(sse_client(web.http))
        await stack.enter_async_context(sse_client(web.http))
        # The fourth, socket or stream, is refused: streams are no way round the cap.
        async with httpx.AsyncClient(base_url=web.http) as http:
            refused = await http.get(f"/api/v1/feed/stream?{QUERY}")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        with pytest.raises(InvalidStatus) as ws_refused:
            await stack.enter_async_context(connect(f"{web.ws}/ws/feed?{QUERY}"))
        assert ws_refused.value.response.status_code == 429
        assert sum(web.state.gateway.per_address.values()) == 3
    # ...and streams that end give their place back.
    assert sum(web.state.gateway.per_address.values()) == 0


async def test_streams_count_against_the_sockets_a_minute(redis: Redis,
                                                          settings: Settings) -> None:
    settings = settings.with_(address_sockets_per_minute=3)
    async with web_server(settings) as web:
        for _ in range(3):
            async with sse_client(web.http):
                pass
        async with httpx.AsyncClient(base_url=web.http) as http:
            refused = await http.get(f"/api/v1/feed/stream?{QUERY}")
        assert refused.status_code == 429


async def test_streams_count_against_the_process_s_connections(redis: Redis,
                                                               settings: Settings) -> None:
    # The cap on streams is max_sockets: max_connections less the share kept for plain HTTP.
    settings = settings.with_(max_connections=5)
    assert settings.max_sockets == 4
    async with web_server(settings) as web, contextlib.AsyncExitStack() as stack:
        for _ in range(settings.max_sockets):
            await stack.enter_async_context(sse_client(web.http))
        # One connection is left for plain HTTP: the next stream is refused on it, not
        # dropped at the connection cap, and the server closes that connection at once (a
        # refused client kept alive held the share kept for pages and health checks).
        async with httpx.AsyncClient(base_url=web.http) as http:
            refused = await http.get(f"/api/v1/feed/stream?{QUERY}")
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "server_busy"
            assert refused.headers["connection"] == "close"
            await wait_for(lambda: len(web.state.guard.open) == settings.max_sockets,
                           timeout=2, message="the refused connection closed by the server")


async def _stalled_stream(port: int, query: str) -> socket.socket:
    """An event stream's client that reads the response head and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, (f"GET /api/v1/feed/stream?{query} HTTP/1.1\r\n"
                                   f"Host: 127.0.0.1:{port}\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 200"), response
    return sock


async def test_a_stream_whose_client_stops_reading_is_cut_off(redis: Redis,
                                                              settings: Settings) -> None:
    settings = settings.with_(write_stall_timeout_s=1.0)
    async with web_server(settings) as web, sse_client(web.http) as healthy:
        with contextlib.closing(await _stalled_stream(web.port, QUERY)):
            hub, gateway = web.state.hub, web.state.gateway
            await wait_for(lambda: len(hub.index) == 2, message="both subscribed")
            total = 200  # ~12 MB: far more than socket buffers and the per-stream limit
            for i in range(total):
                await redis.xadd(keys.feed_stream(settings.region), {"d": _big_post(i)})
            await wait_for(lambda: hub.dropped_slow == 1, 10, "the stalled stream to be dropped")
            await wait_for(lambda: len(healthy.of_type("post")) == total, 20, "every post")
            # Its connection is gone too, not only its subscription.
            await wait_for(lambda: sum(gateway.per_address.values()) == 1 and
                           len(web.state.guard.open) <= 2, 10, "the stalled connection closed")
            assert not healthy.ended.is_set()


async def test_a_stream_ends_after_its_longest_life_and_resumes(redis: Redis,
                                                                settings: Settings) -> None:
    settings = settings.with_(sse_max_life_s=0.5)
    shop = await add_shop(redis, settings, "Épicerie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        async with sse_client(web.http) as first:
            await asyncio.wait_for(first.ended.wait(), 5)
        missed = (await send_post(http, shop, arrival("Olives"))).json()["id"]
        async with sse_client(web.http, last_event_id=first.last_id) as resumed:
            await wait_for(lambda: missed in resumed.post_ids())
            assert not resumed.of_type("reset")


async def test_a_stopping_server_ends_its_streams_at_once(redis: Redis,
                                                          settings: Settings) -> None:
    async with web_server(settings) as web, sse_client(web.http) as sse:
        started = time.monotonic()
        await web.stop()
        await asyncio.wait_for(sse.ended.wait(), 5)
        # Well before uvicorn's graceful timeout (5 s), which would cut it otherwise.
        assert time.monotonic() - started < 2


async def test_resume_by_last_event_id_across_a_restart_without_gap_or_duplicate(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(settings.redis_url or "")
    # Digits no other number in the log has: the position must be in no line of it.
    lat, lon = "44.8370137", "-0.5735219"
    query = f"lat={lat}&lon={lon}&radius_m=500"
    web = Service(["web", "--port", str(port)], env, tmp_path / "web1.log").start()
    try:
        await wait_http(f"{base}/readyz")
        async with web_server(settings) as api, enricher(redis, settings), \
                httpx.AsyncClient(base_url=api.http) as http:
            async def post(title: str) -> str:
                answer = await send_post(http, shop, arrival(title))
                assert answer.status_code == 202
                post_id: str = answer.json()["id"]
                return post_id

            async with sse_client(base, query) as before:
                sent = [await post(f"avant {i}") for i in range(3)]
                await wait_for(lambda: before.post_ids() == sent)
                web.kill()
                await asyncio.wait_for(before.ended.wait(), 5)
            while_down = [await post(f"pendant {i}") for i in range(3)]
            web = Service(["web", "--port", str(port)], env, tmp_path / "web2.log").start()
            await wait_http(f"{base}/readyz")
            async with sse_client(base, query, last_event_id=before.last_id) as after:
                assert after.post_ids() == while_down  # no gap, no duplicate, in order
                assert not after.of_type("reset")
                live = await post("après")
                await wait_for(lambda: after.post_ids() == [*while_down, live])
    finally:
        web.terminate()
    logs = (tmp_path / "web1.log").read_text() + (tmp_path / "web2.log").read_text()
    # The second stream's access line is there (the first one's died with its process)...
    assert '"path": "/api/v1/feed/stream", "status": 200' in logs, logs
    assert "8370137" not in logs and "5735219" not in logs  # ...without the position


async def test_a_snapshot_larger_than_the_buffer_limit_is_not_taken_for_lagging(
        redis: Redis, settings: Settings) -> None:
    # A socket's snapshot goes straight to its transport; a stream's is queued until its
    # response takes it, which must not count as a client that does not read.
    settings = settings.with_(gateway_socket_buffer_max=2048)
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        ids = [(await send_post(http, shop, arrival(f"Nouveauté n°{i} " + "x" * 50))).json()["id"]
               for i in range(12)]
        await wait_for(lambda: _in_feed(http, ids[-1]), message="the posts live")
        async with sse_client(web.http) as sse:
            assert sorted(sse.post_ids()) == sorted(ids)
            assert len(sse.events[0][2]["post"]["title"]) > 50
            assert sum(len(json.dumps(d)) for d in sse.frames()) > 2 * 2048
            assert web.state.hub.dropped_slow == 0
            live = (await send_post(http, shop, arrival("Prix Goncourt"))).json()["id"]
            await wait_for(lambda: live in sse.post_ids())
