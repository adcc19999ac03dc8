"""What the console and screen pages rely on: sessions, presence, reach, QR, config."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.presence import PresenceReport
from storage import keys
from tests.helpers import (
    Service,
    add_shop,
    arrival,
    enricher,
    feed_client,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
    web_server,
)

STREET = (44.8370, -0.5735)


async def test_session_cookie_signs_in_and_out(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        assert (await http.get("/api/v1/session")).status_code == 401
        bad = await http.post("/api/v1/session", json={"shop_id": shop.id, "token": "nope"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (401, "invalid_token")
        signed = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                          "token": shop.token})
        assert signed.status_code == 200 and signed.json()["id"] == shop.id
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert shop.token not in cookie
        # Nothing in Redis holds the cookie value or the token itself.
        sessions = await redis.keys("sf:session:*")
        assert len(sessions) == 1
        for key in sessions:
            stored = await redis.hgetall(key)
            assert shop.token.encode() not in b"".join(stored.values())
        assert (await http.get("/api/v1/session")).json()["id"] == shop.id
        # The cookie speaks for the shop: post without a bearer token.
        origin = {"Origin": web.http}
        posted = await http.post(f"/api/v1/shops/{shop.id}/posts", json=arrival(),
                                 headers=origin)
        assert posted.status_code == 202
        # ...but not from another origin, and not for another shop.
        foreign = await http.post(f"/api/v1/shops/{shop.id}/posts", json=arrival(),
                                  headers={"Origin": "https://evil.example"})
        assert (foreign.status_code, foreign.json()["error"]["code"]) == (403, "cross_origin")
        # A browser that says the request is cross-site is believed, Origin or not.
        for site in ("cross-site", "same-site"):
            told = await http.post(f"/api/v1/shops/{shop.id}/posts", json=arrival(),
                                   headers={"Sec-Fetch-Site": site})
            assert (told.status_code, told.json()["error"]["code"]) == (403, "cross_origin")
        own = await http.post(f"/api/v1/shops/{shop.id}/posts", json=arrival(),
                              headers={**origin, "Sec-Fetch-Site": "same-origin"})
        assert own.status_code == 202
        other = await add_shop(redis, settings, "Other", *STREET)
        wrong = await http.post(f"/api/v1/shops/{other.id}/posts", json=arrival(),
                                headers=origin)
        assert wrong.status_code == 401
        # Rotating the token ends the session at once.
        rotated = await http.post(f"/api/v1/shops/{shop.id}/token", headers=origin)
        assert rotated.status_code == 200
        assert (await http.get("/api/v1/session")).status_code == 401
        again = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                         "token": rotated.json()["token"]})
        assert again.status_code == 200
        out = await http.delete("/api/v1/session", headers=origin)
        assert out.status_code == 204
        assert (await http.get("/api/v1/session")).status_code == 401
        assert await redis.keys("sf:session:*") == []


async def test_presence_and_reach_for_the_console(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, contextlib.AsyncExitStack() as stack:
        stats_url = f"/api/v1/shops/{shop.id}/stats"
        headers = {"Authorization": f"Bearer {shop.token}"}
        assert (await http.get(stats_url)).status_code == 401

        async def watching() -> dict[int, dict[str, Any]]:
            body = (await http.get(stats_url, headers=headers)).json()
            return {w["radius_m"]: w for w in body["watching"]}

        # Nobody is not "0": under 5 the console is told only "fewer than 5".
        assert await watching() == {r: {"radius_m": r, "count": None, "fewer_than": 5}
                                    for r in (250, 500, 1000, 2000)}
        near = (STREET[0] + 0.0015, STREET[1])  # ~170 m north
        phones = [await stack.enter_async_context(feed_client(web.ws, *near))
                  for _ in range(5)]
        screen = await stack.enter_async_context(feed_client(web.ws, *STREET, client="screen"))
        await stack.enter_async_context(feed_client(web.ws, STREET[0] + 0.02, STREET[1]))

        async def counted() -> bool:
            return (await watching())[250] == {"radius_m": 250, "count": 5}
        # Five people within 250 m (the phones; the sixth is 2.2 km away): the in-shop
        # screen is not a person watching.
        await wait_for(counted, message="watchers within 250 m")
        assert (await watching())[2000]["count"] == 5
        post_id = (await send_post(http, shop, arrival())).json()["id"]
        for client in (*phones, screen):
            await client.wait_post(post_id)

        async def reached() -> bool:
            body = (await http.get(stats_url, headers=headers)).json()
            # Each count as people watching: exact from 5, else only "fewer than 5".
            return body["reach"].get(post_id) == {"phone": 5, "screen": None,
                                                  "fewer_than": 5}
        await wait_for(reached, message="reach counted")
        # One leaves: four are "fewer than 5", not 4.
        await phones.pop().close()

        async def fewer() -> bool:
            return (await watching())[250] == {"radius_m": 250, "count": None,
                                               "fewer_than": 5}
        await wait_for(fewer, message="presence to drop when a socket closes")


async def test_presence_reports_carry_numbers_only(redis: Redis, settings: Settings) -> None:
    """What a gateway publishes (and no key at all): cell numbers and counts."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.presence_channel(settings.region))
    try:
        async with web_server(settings) as web, feed_client(web.ws, 44.84123, -0.57456):
            reports: list[bytes] = []

            async def published() -> bool:
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=0.1)
                if message is not None:
                    reports.append(message["data"])
                return bool(reports)
            await wait_for(published)
            assert not await redis.keys("sf:*presence*")
    finally:
        await pubsub.aclose()
    report = msgspec.json.decode(reports[0], type=PresenceReport)
    assert [n for _, n in report.cells] == [1]
    assert b"44.841" not in reports[0] and b"0.574" not in reports[0]


async def test_qr_code_and_config(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    port = free_port()  # the QR names the address the server is configured for
    async with web_server(settings.with_(port=port), port=port) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        qr = await http.get(f"/api/v1/shops/{shop.id}/qr.svg")
        assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
        assert qr.text.startswith("<svg")
        assert qr.headers["x-qr-target"] == (
            f"{web.http}/?lat=44.83700&lon=-0.57350&radius_m=500&shop={shop.id}")
        config = (await http.get("/api/v1/config")).json()
        assert config["tile_url"].startswith("https://")
        assert config["fallback"] == {"lat": 44.837, "lon": -0.5735}
        # The console's photo limits, from schemas/limits.py (issue 15).
        assert (config["media_per_post_max"], config["media_upload_max_bytes"],
                config["media_pixels_max"]) == (4, 10 * 1024 * 1024, 40_000_000)
        for page in ("/", "/shop", f"/screen/{shop.id}"):
            response = await http.get(page)
            assert response.status_code == 200, page
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
        assert (await redis.exists(keys.shop(shop.id))) == 1


async def test_a_gateway_gone_silent_is_no_longer_counted(redis: Redis, settings: Settings,
                                                           tmp_path: Path) -> None:
    """Presence lives in the listeners' memory only: watchers of another process are
    counted from its reports, and a process killed without a word stops counting once it
    has been silent for presence_silence_s."""
    shop = await add_shop(redis, settings, "Cave", *STREET)
    port = free_port()
    other = Service(["web", "--port", str(port)], service_env(settings.redis_url or ""),
                    tmp_path / "web.log").start()
    stats_url = f"/api/v1/shops/{shop.id}/stats"
    headers = {"Authorization": f"Bearer {shop.token}"}
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz")
        async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http, \
                contextlib.AsyncExitStack() as stack:
            for _ in range(5):  # on the other process
                await stack.enter_async_context(feed_client(f"ws://127.0.0.1:{port}", *STREET))

            async def within_250() -> int | None:
                body = (await http.get(stats_url, headers=headers)).json()
                return next(w["count"] for w in body["watching"] if w["radius_m"] == 250)

            async def counted() -> bool:
                return await within_250() == 5
            await wait_for(counted, 10, "the other process's watchers counted here")
            other.kill()
            killed = asyncio.get_running_loop().time()

            async def dropped() -> bool:
                return await within_250() is None
            await wait_for(dropped, settings.presence_silence_s + 3, "a silent gateway dropped")
            assert asyncio.get_running_loop().time() - killed >= settings.presence_silence_s - 1
    finally:
        if other.process is not None and other.process.poll() is None:
            other.terminate()
