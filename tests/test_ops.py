"""Operations: metrics summed over every web worker, an access line for every feed
socket, quiet client disconnects. Real processes, real sockets, real Valkey."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streetfeed.settings import Settings
from tests.helpers import (
    Service,
    add_shop,
    arrival,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
)

STREET = (44.8370, -0.5735)


# --- access lines -------------------------------------------------------------------------

def _lines(service: Service) -> list[dict[str, Any]]:
    out = []
    for line in service.log().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out


def _access(service: Service, request_id: str) -> list[dict[str, Any]]:
    return [e for e in _lines(service)
            if e.get("logger") == "streetfeed.access" and e.get("request_id") == request_id]


async def test_feed_sockets_get_one_access_line_each_without_their_position(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    # Digits no shop and no default share: they must appear in no log line.
    here = (44.83917, -0.57624)
    port = free_port()
    service = Service(["web", "--port", str(port)], service_env(settings.redis_url or ""),
                      tmp_path / "web.log").start()
    base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    query = f"lat={here[0]}&lon={here[1]}&radius_m=500"
    try:
        await wait_http(f"{base}/readyz")
        async with httpx.AsyncClient(base_url=base) as http:
            await http.get("/healthz", headers={"X-Request-ID": "ops-http-1"})
        await wait_for(lambda: bool(_access(service, "ops-http-1")), 5, "the HTTP access line")

        # 1. Accepted, then closed by the client: 101, the id echoed in the handshake.
        async with connect(f"{ws}/ws/feed?{query}",
                           additional_headers={"X-Request-ID": "ops-ws-1"}) as sock:
            assert sock.response is not None
            assert sock.response.headers.get("X-Request-ID") == "ops-ws-1"
            json.loads(await sock.recv())  # the snapshot's end: the socket is live
            assert not _access(service, "ops-ws-1")  # written when the socket ends
        await wait_for(lambda: bool(_access(service, "ops-ws-1")), 5, "the socket's line")

        # 2. Refused (an origin not allowed): the refusal's status, the id echoed.
        try:
            async with connect(f"{ws}/ws/feed?{query}", origin="https://elsewhere.example",
                               additional_headers={"X-Request-ID": "ops-ws-2"}):
                raise AssertionError("a foreign origin was let in")
        except InvalidStatus as exc:
            assert exc.response.status_code == 403
            assert exc.response.headers.get("X-Request-ID") == "ops-ws-2"

        # 3. A malformed id is replaced by one made up here, echoed and logged.
        async with connect(f"{ws}/ws/feed?{query}",
                           additional_headers={"X-Request-ID": "not a valid id"}) as sock:
            assert sock.response is not None
            made_up = sock.response.headers.get("X-Request-ID")
            assert made_up and made_up != "not a valid id"
            json.loads(await sock.recv())
        # Lines are written in order: once the third is there, the others are complete.
        await wait_for(lambda: bool(_access(service, made_up)), 5, "the third socket's line")
    finally:
        service.terminate()

    http_line = _access(service, "ops-http-1")[0]
    first, = _access(service, "ops-ws-1")
    refused, = _access(service, "ops-ws-2")
    third, = _access(service, made_up)
    assert set(first) == set(http_line)  # same logger, same fields as HTTP
    assert (first["method"], first["path"], first["status"]) == ("WS", "/ws/feed", 101)
    assert (refused["method"], refused["path"], refused["status"]) == ("WS", "/ws/feed", 403)
    assert third["status"] == 101
    for line in (first, refused, third):
        assert line["level"] == "info"
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
        assert "?" not in json.dumps(line)
    log = service.log()
    for digits in ("44.839", "-0.576", "44.8391", "-0.5762", "radius_m=500", "lat="):
        assert digits not in log, f"{digits!r} found in the log"


# --- a client leaving mid-body --------------------------------------------------------------

async def test_client_leaving_mid_body_is_logged_quietly(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    port = free_port()
    service = Service(["web", "--port", str(port)], service_env(settings.redis_url or ""),
                      tmp_path / "web.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/readyz")
        # 10 of 1,000 bytes then a plain close (FIN); 3 bytes then a reset (RST).
        for request_id, sent, reset in (("cut-1", 10, False), ("cut-2", 3, True)):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write((f"POST /api/v1/shops/{shop.id}/posts HTTP/1.1\r\n"
                          f"Host: 127.0.0.1:{port}\r\n"
                          f"Authorization: Bearer {shop.token}\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 1000\r\n"
                          f"X-Request-ID: {request_id}\r\n\r\n").encode()
                         + b'{"kind": "new_arrival"}'[:sent])
            await writer.drain()
            if reset:
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            await wait_for(lambda rid=request_id: bool(_access(service, rid)), 10,
                           f"the access line of {request_id}")
        # A request after them, waited for: anything they logged is in the file by now.
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz", headers={"X-Request-ID": "after"})).status_code \
                == 200
        await wait_for(lambda: bool(_access(service, "after")), 5, "the next access line")
        # The server is still fine with a proper post.
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await send_post(http, shop, arrival())).status_code == 202
    finally:
        service.terminate()
    for request_id in ("cut-1", "cut-2"):
        line, = _access(service, request_id)
        assert line["status"] == 499  # "client closed request", not a 500
    entries = _lines(service)
    assert not [e for e in entries if e["level"] in ("error", "critical")], entries
    assert not [e for e in entries if "exc" in e]
    assert "Traceback" not in service.log()
    assert "ClientDisconnect" not in service.log()
