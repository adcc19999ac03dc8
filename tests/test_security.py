"""Nobody in who shouldn't be, nothing kept that shouldn't be: limits, origins, headers,
tokens out of logs, and a passer-by's position nowhere but in the gateway's memory."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streetfeed.settings import Settings
from tests.helpers import (
    Service,
    add_shop,
    arrival,
    feed_client,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
    web_server,
)

STREET = (44.8370, -0.5735)


async def test_posts_per_shop_are_rate_limited(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(shop_posts_per_minute=3)
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        statuses = [(await send_post(http, shop, arrival(f"p{i}"))).status_code
                    for i in range(3)]
        assert statuses == [202, 202, 202]
        limited = await send_post(http, shop, arrival("one too many"))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_requests_per_address_are_rate_limited(redis: Redis, settings: Settings) -> None:
    settings = settings.with_(address_requests_per_minute=5)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        url = f"/api/v1/feed?lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
        assert [(await http.get(url)).status_code for _ in range(5)] == [200] * 5
        limited = await http.get(url)
        assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
        assert limited.headers["retry-after"].isdigit()
        # Pages and files are not counted.
        assert (await http.get("/")).status_code == 200
        # Addresses are never stored in clear.
        counters = await redis.keys("sf:rl:*")
        assert counters
        for key in counters:
            assert b"127.0.0.1" not in key


async def test_sockets_per_address_are_limited(redis: Redis, settings: Settings) -> None:
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
    capped = settings.with_(max_sockets_per_address=2)
    async with web_server(capped) as web, feed_client(web.ws, *STREET), \
            feed_client(web.ws, *STREET):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{web.ws}/ws/feed?{query}"):
                pass
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body)["error"]["code"] == "rate_limited"
    await redis.flushall()  # a fresh minute for the per-minute counter
    rated = settings.with_(address_sockets_per_minute=2)
    async with web_server(rated) as web:
        for _ in range(2):
            async with feed_client(web.ws, *STREET):
                pass
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{web.ws}/ws/feed?{query}"):
                pass
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["retry-after"].isdigit()


async def test_websocket_origin_allow_list(redis: Redis, settings: Settings) -> None:
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=100"
    settings = settings.with_(allowed_origins=("https://screens.example",))
    async with web_server(settings) as web:
        url = f"{web.ws}/ws/feed?{query}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["error"]["code"] == "origin_not_allowed"
        for origin in (f"http://127.0.0.1:{web.port}", "https://screens.example"):
            async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                assert json.loads(await ws.recv())["type"] == "ping"


async def test_security_headers_on_every_page(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Kiosque", *STREET)
    embedded = settings.with_(screen_frame_ancestors="https://mall.example")
    async with web_server(embedded) as web, httpx.AsyncClient(base_url=web.http) as http:
        for path in ("/", "/shop", f"/screen/{shop.id}", "/static/app.js",
                     "/api/v1/config", "/healthz", "/api/v1/nothing"):
            response = await http.get(path)
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
            assert "object-src 'none'" in csp and "base-uri 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            expected = ("https://mall.example" if path.startswith("/screen/") else "'none'")
            assert f"frame-ancestors {expected}" in csp, path


async def _redis_dump(redis: Redis) -> bytes:
    """Every key and every value, whatever its type, as one blob to search."""
    parts: list[bytes] = []
    for key in await redis.keys("*"):
        parts.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(await redis.get(key) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                parts += [field, value]
        elif kind == "set":
            parts += list(await redis.smembers(key))
        elif kind == "zset":
            for member, score in await redis.zrange(key, 0, -1, withscores=True):
                parts += [member, repr(score).encode()]
        elif kind == "list":
            parts += list(await redis.lrange(key, 0, -1))
        elif kind == "stream":
            for entry_id, fields in await redis.xrange(key):
                parts.append(entry_id)
                for field, value in fields.items():
                    parts += [field, value]
    return b"\n".join(parts)


async def test_position_of_a_passer_by_is_never_stored_or_logged(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    # South-west of the demo street, ~800 m from it: no shop shares these digits.
    here, moved = (44.82917, -0.58124), (44.82863, -0.58077)
    patterns = [b"44.829", b"-0.581", b"44.828", b"-0.580", b"44.8291", b"44.8286",
                b"-0.5812", b"-0.5807"]
    port = free_port()
    service = Service(["up", "--port", str(port)],
                      service_env(settings.redis_url or "", STREETFEED_DEMO_INTERVAL_S="0.2"),
                      tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/readyz")
        async with feed_client(f"ws://127.0.0.1:{port}", *here, radius_m=1500) as client, \
                httpx.AsyncClient(base_url=base) as http:
            await wait_for(lambda: len(client.posts()) >= 3, 20, "demo posts delivered")
            await client.send({"type": "subscribe", "lat": moved[0], "lon": moved[1],
                               "radius_m": 1500})
            await wait_for(lambda: bool(client.of_type("reset")))
            feed = await http.get("/api/v1/feed", params={"lat": here[0], "lon": here[1],
                                                           "radius_m": 1500})
            assert feed.status_code == 200
            # Traffic goes on for a few stats flushes while the client watches.
            seen = len(client.posts())
            await wait_for(lambda: len(client.posts()) >= seen + 3, 20)
            metrics = (await http.get("/metrics")).content
        blob = await _redis_dump(redis)
        log = service.log().encode()
        for pattern in patterns:
            assert pattern not in blob, f"{pattern!r} found in Redis"
            assert pattern not in log, f"{pattern!r} found in the logs"
            assert pattern not in metrics, f"{pattern!r} found in the metrics"
        assert b"/ws/feed" in log or b"/api/v1/feed" in log  # the requests were logged...
    finally:
        service.terminate()


async def test_tokens_never_reach_logs_metrics_or_errors(redis: Redis, settings: Settings,
                                                         tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port)],
                      service_env(settings.redis_url or ""), tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    wrong = "WRONG" + shop.token[5:]
    try:
        await wait_http(f"{base}/readyz")
        async with httpx.AsyncClient(base_url=base) as http:
            bodies = []
            for token in (shop.token, wrong):
                for _ in range(2):
                    r = await http.post(f"/api/v1/shops/{shop.id}/posts",
                                        json=arrival("<script>x</script>"),
                                        headers={"Authorization": f"Bearer {token}"})
                    bodies.append(r.text)
            signin = await http.post("/api/v1/session", json={"shop_id": shop.id,
                                                              "token": wrong})
            bodies.append(signin.text)
            rotated = await http.post(f"/api/v1/shops/{shop.id}/token",
                                      headers={"Authorization": f"Bearer {shop.token}"})
            new_token = rotated.json()["token"]
            metrics = (await http.get("/metrics")).text
    finally:
        service.terminate()
    log = service.log()
    for token in (shop.token, wrong, new_token, shop.token[:16]):
        assert token not in log
        assert token not in metrics
        assert all(token not in body for body in bodies)
    stored = await _redis_dump(redis)
    assert shop.token.encode() not in stored and new_token.encode() not in stored


async def test_deployment_moderation_policy(redis: Redis, settings: Settings,
                                            tmp_path: Path) -> None:
    from streetfeed.settings import load_settings

    words = tmp_path / "banned.txt"
    words.write_text("casino\nloterie\n")
    configured = load_settings({"STREETFEED_BANNED_WORDS_FILE": str(words),
                                "STREETFEED_MAX_LINKS": "0"}, redis_url=settings.redis_url,
                               shop_posts_per_minute=1000)
    shop = await add_shop(redis, configured, "Tabac", *STREET)
    async with web_server(configured) as web, httpx.AsyncClient(base_url=web.http) as http:
        banned = await send_post(http, shop, arrival("Grand CASINO ce soir"))
        assert (banned.status_code, banned.json()["error"]["code"]) == (422, "content_rejected")
        link = await send_post(http, shop, arrival("Voir www.exemple.fr"))
        assert (link.status_code, link.json()["error"]["code"]) == (422, "too_many_links")
        assert (await send_post(http, shop, arrival("Journaux du jour"))).status_code == 202
