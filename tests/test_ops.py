"""Operations: metrics summed over every web worker, an access line for every feed
socket, quiet client disconnects. Real processes, real sockets, real Valkey."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime.settings import Settings
from tests.helpers import (
    FeedClient,
    Service,
    add_shop,
    arrival,
    enricher,
    feed_client,
    free_port,
    gateways_watched,
    send_post,
    service_env,
    wait_for,
    wait_http,
)

STREET = (44.8370, -0.5735)


# --- /metrics with several workers ------------------------------------------------------

async def _metrics(base: str) -> dict[str, float]:
    """One scrape on a fresh connection (the kernel picks the worker that answers)."""
    async with httpx.AsyncClient() as fresh:
        page = (await fresh.get(f"{base}/metrics", timeout=5)).text
    return {sample.name: sample.value for family in text_string_to_metric_families(page)
            for sample in family.samples if not sample.labels}


async def _worker_ids(base: str, want: int, timeout: float = 20) -> set[str]:
    """Gateway ids ("<pid>-<hex>") of the workers answering on the port."""
    seen: set[str] = set()

    async def all_seen() -> bool:
        async with httpx.AsyncClient() as fresh:
            with contextlib.suppress(httpx.HTTPError):
                seen.add((await fresh.get(f"{base}/readyz", timeout=2)).json()["checks"]["gateway"])
        return len(seen) >= want
    await wait_for(all_seen, timeout, f"{want} workers answering")
    return seen


async def _every_scrape_says(base: str, expected: dict[str, float], scrapes: int = 8,
                             timeout: float = 10) -> None:
    """Wait until a scrape agrees, then every one of `scrapes` more must agree too."""
    last: dict[str, float] = {}

    async def agrees() -> bool:
        last.update(await _metrics(base))
        return all(last.get(name) == value for name, value in expected.items())
    try:
        await wait_for(agrees, timeout, f"/metrics to say {expected}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the last scrape said {last}") from None
    for _ in range(scrapes):
        page = await _metrics(base)
        assert {n: page.get(n) for n in expected} == expected


async def test_metrics_of_web_workers_are_summed_over_every_worker(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    port = free_port()
    base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    tmp = tmp_path / "tmp"  # where the run makes its metrics directory
    tmp.mkdir()
    service = Service(["web", "--port", str(port), "--workers", "2"],
                      service_env(settings.redis_url or "", TMPDIR=str(tmp)),
                      tmp_path / "web.log").start()
    try:
        await wait_http(f"{base}/readyz")
        workers = await _worker_ids(base, 2)
        shared, = tmp.glob("streetfeed-metrics-*")
        assert list(shared.glob("*.db"))
        async with contextlib.AsyncExitStack() as stack:
            clients: list[FeedClient] = [await stack.enter_async_context(
                feed_client(ws, STREET[0] + i * 0.00001, STREET[1], 300)) for i in range(16)]

            await gateways_watched(redis, settings.region, 2)  # sockets on both workers
            await _every_scrape_says(base, {"streetfeed_sockets_open": 16})

            async with enricher(redis, settings):
                ids = []
                for i in range(3):  # a fresh connection each: posts land on either worker
                    async with httpx.AsyncClient(base_url=base) as http:
                        ids.append((await send_post(http, shop, arrival(f"fraises {i}"))).json()
                                   ["id"])
                await wait_for(lambda: all(set(ids) <= set(c.post_ids()) for c in clients), 10)
            totals = {"streetfeed_sockets_open": 16, "streetfeed_posts_accepted_total": 3,
                      "streetfeed_deliveries_total": 48}
            await _every_scrape_says(base, totals)

            # A worker killed: the parent starts another; the dead one's sockets no longer
            # count (its live gauges are dropped), its counters still do.
            victim = int(sorted(workers)[0].split("-")[0])
            os.kill(victim, signal.SIGKILL)
            await wait_for(lambda: any(c.closed.is_set() for c in clients), 10,
                           "the killed worker's sockets closed")
            seen_new: set[str] = set()

            async def restarted() -> bool:
                seen_new.update(await _worker_ids(base, 1))
                return bool(seen_new - workers)
            await wait_for(restarted, 30, "a new worker in place of the killed one")

            def still_open() -> int:
                return sum(not c.closed.is_set() for c in clients)

            async def dead_sockets_gone() -> bool:
                return (await _metrics(base)).get("streetfeed_sockets_open") == still_open()
            await wait_for(dead_sockets_gone, 10, "the killed worker's sockets uncounted")
            assert 0 < still_open() < 16
            await _every_scrape_says(base, {**totals, "streetfeed_sockets_open": still_open()})
    finally:
        assert service.terminate() == 0
    assert "Traceback" not in service.log()
    assert not list(tmp.iterdir()), "the run's metrics directory outlived it"


async def test_up_with_workers_shows_the_enricher_metrics_of_the_parent(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    """`up --workers N` runs the enricher in the parent: its counters reach /metrics too."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service = Service(["up", "--no-demo", "--port", str(port), "--workers", "2"],
                      service_env(settings.redis_url or ""), tmp_path / "up.log").start()
    try:
        await wait_http(f"{base}/readyz")
        await _worker_ids(base, 2)
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await send_post(http, shop, arrival())).status_code == 202
        await _every_scrape_says(base, {"streetfeed_posts_published_total": 1,
                                        "streetfeed_posts_accepted_total": 1})
    finally:
        assert service.terminate() == 0


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
