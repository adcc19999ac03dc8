"""What the console and screen pages rely on: sessions, presence, reach, QR, config."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from feed.hub import Hub
from feed.stats import StatsPublisher
from streetfeed import keys
from streetfeed.settings import Settings
from tests.helpers import (
    HubSink,
    add_shop,
    arrival,
    enricher,
    feed_client,
    free_port,
    send_post,
    wait_for,
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
            httpx.AsyncClient(base_url=web.http) as http:
        stats_url = f"/api/v1/shops/{shop.id}/stats"
        headers = {"Authorization": f"Bearer {shop.token}"}
        assert (await http.get(stats_url)).status_code == 401

        async def watching(radius: int) -> int:
            body = (await http.get(stats_url, headers=headers)).json()
            return next(w["count"] for w in body["watching"] if w["radius_m"] == radius)

        near = (STREET[0] + 0.0015, STREET[1])  # ~170 m north
        async with feed_client(web.ws, *near) as phone, \
                feed_client(web.ws, *STREET, client="screen") as screen, \
                feed_client(web.ws, STREET[0] + 0.02, STREET[1]):  # ~2.2 km away
            async def counted() -> bool:
                return await watching(250) == 1
            # One person within 250 m (the phone; the third is 2.2 km away): the in-shop
            # screen is not a person watching.
            await wait_for(counted, message="watchers within 250 m")
            assert await watching(100) == 0
            assert await watching(2000) == 1
            post_id = (await send_post(http, shop, arrival())).json()["id"]
            await phone.wait_post(post_id)
            await screen.wait_post(post_id)

            async def reached() -> bool:
                body = (await http.get(stats_url, headers=headers)).json()
                return body["reach"].get(post_id) == {"phone": 1, "screen": 1}
            await wait_for(reached, message="reach counted")
        async def gone() -> bool:
            return await watching(2000) == 0
        await wait_for(gone, message="presence to drop when sockets close")


async def test_presence_never_holds_coordinates(redis: Redis, settings: Settings) -> None:
    async with web_server(settings) as web, \
            feed_client(web.ws, 44.84123, -0.57456):
        async def published() -> bool:
            return bool(await redis.keys("sf:*presence*"))
        await wait_for(published)
        for key in await redis.keys("*"):
            kind = (await redis.type(key)).decode()
            blob = key + (b"".join(k + v for k, v in (await redis.hgetall(key)).items())
                          if kind == "hash" else b"")
            assert b"44.841" not in blob and b"0.574" not in blob


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
        for page in ("/", "/shop", f"/screen/{shop.id}"):
            response = await http.get(page)
            assert response.status_code == 200, page
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
        assert (await redis.exists(keys.shop(shop.id))) == 1


async def test_presence_is_rewritten_only_when_it_changes(redis: Redis,
                                                          settings: Settings) -> None:
    hub = Hub(settings)
    hub.set_position(settings.region, "0-0")
    conn = hub.connect(HubSink())
    conn.sub.place(*STREET, 300, None)
    conn.regions, conn.regions_key = [settings.region], (settings.region,)
    hub.subscribe(conn)
    publisher = StatsPublisher(redis, hub)
    key = keys.presence(settings.region, publisher.id)
    await publisher.publish()
    assert list((await redis.hgetall(key)).values()) == [b"1"]
    # Unchanged: the hash is not written again (a field added meanwhile stays), only kept.
    await redis.hset(key, "marker", 7)
    await redis.expire(key, 1)
    await publisher.publish()
    assert (await redis.hget(key, "marker")) == b"7" and await redis.ttl(key) > 1
    # A hash lost meanwhile is written whole again at the next flush.
    await redis.delete(key)
    await publisher.publish()
    await publisher.publish()
    assert list((await redis.hgetall(key)).values()) == [b"1"]
    # A change rewrites it: the last watcher gone, nothing is left.
    hub.unsubscribe(conn)
    await publisher.publish()
    assert not await redis.exists(key)
