"""WebSocket frames fuzzed with hypothesis: an error frame or a close code, never a crash,
never an effect on other sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from runtime.settings import Settings
from schemas.feed import FeedEntry
from storage import keys
from streetfeed.runner import uvicorn_config
from tests.helpers import free_port
from web.app import create_app

STREET = (44.8370, -0.5735)
ALLOWED_CLOSES = {1003, 1007, 1008, 1009}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)
subscribe_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "SUBSCRIBE", "move", ""])},
    optional={"lat": json_values, "lon": json_values, "radius_m": json_values,
              "kinds": json_values, "client": json_values, "extra": json_values})
messages = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    subscribe_like.map(lambda v: json.dumps(v, allow_nan=True)),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(4097, 20_000).map(lambda size: "x" * size),
    st.just('{"type":"subscribe","lat":1e999,"lon":0,"radius_m":100}'),
    st.just('{"type":"subscribe","lat":NaN,"lon":0,"radius_m":100}'),
)


@pytest.fixture
def threaded_server(settings: Settings) -> Iterator[tuple[int, Any]]:
    """The real app under uvicorn in its own thread, so sync clients can drive it."""
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app, port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    with contextlib.suppress(Exception):
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.02)
    assert server.started
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(15)


def _recv_until(ws: ClientConnection, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        if predicate(frame):
            return frame  # type: ignore[no-any-return]


def test_fuzzed_frames_get_an_error_or_a_close_and_spare_the_others(
        threaded_server: tuple[int, Any], settings: Settings) -> None:
    port, _app = threaded_server
    url = f"ws://127.0.0.1:{port}/ws/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
    redis = SyncRedis.from_url(settings.redis_url)  # type: ignore[arg-type]
    redis.flushall()
    with connect(url, max_size=2**20) as bystander:
        _run_fuzz(url, bystander, redis, settings)
    redis.close()


def _run_fuzz(url: str, bystander: ClientConnection, redis: SyncRedis,
              settings: Settings) -> None:
    _recv_until(bystander, lambda f: f["type"] == "ping")
    posted = 0

    def marker() -> None:
        """A post near the street: the bystander must get it, whatever happened before."""
        nonlocal posted
        posted += 1
        post_id = f"p_{posted:016d}"
        post = {"id": post_id, "kind": "new_arrival", "title": "t",
                "posted_at": "2026-11-26T10:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
                "shop": {"id": "s", "name": "S", "category": "c", "lat": STREET[0],
                         "lon": STREET[1]}}
        entry = FeedEntry(type="post", id=post_id, kind="new_arrival", lat=STREET[0],
                          lon=STREET[1], post=msgspec.Raw(json.dumps(post).encode()))
        redis.xadd(keys.feed_stream(settings.region), {"d": msgspec.json.encode(entry)})
        _recv_until(bystander, lambda f: f["type"] == "post" and f["post"]["id"] == post_id)

    @settings_profile
    @given(message=messages)
    def one_message(message: str | bytes) -> None:
        with connect(url, max_size=2**20) as ws:
            _recv_until(ws, lambda f: f["type"] == "ping")
            try:
                ws.send(message)
                frame = _recv_until(ws, lambda f: f["type"] in ("error", "reset"))
                if frame["type"] == "error":
                    assert frame["error"]["code"] and frame["error"]["message"]
                # Unless the server closed it, this socket still works: a move is answered.
                ws.send(json.dumps({"type": "subscribe", "lat": STREET[0], "lon": STREET[1],
                                    "radius_m": 300}))
                _recv_until(ws, lambda f: f["type"] == "reset")
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code in ALLOWED_CLOSES, closed
            outcomes.append(message)

    outcomes: list[str | bytes] = []
    one_message()
    assert len(outcomes) >= 100  # hypothesis really ran the examples
    marker()


settings_profile = settings(max_examples=150, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])
