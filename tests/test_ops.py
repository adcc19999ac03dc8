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
