"""A shopkeeper's post reaches nearby browsers live: real Redis, uvicorn, WebSocket clients."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
from tests.helpers import (
    add_shop,
    arrival,
    enricher,
    feed_client,
    flash,
    send_post,
    wait_for,
    web_server,
)

# Rue Sainte-Catherine, Bordeaux, and the far side of the river (~1.6 km away).
STREET = (44.8370, -0.5735)
NEAR = (44.8380, -0.5735)  # ~110 m north
FAR = (44.8440, -0.5560)


async def test_post_reaches_near_browser_and_not_far_one(redis: Redis, settings: Settings) -> None:
    near_shop = await add_shop(redis, settings, "Primeur", *NEAR)
    far_shop = await add_shop(redis, settings, "Boucherie d'en face", *FAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET, radius_m=300) as near_client, \
            feed_client(web.ws, *FAR, radius_m=300) as far_client:
        accepted = await send_post(http, near_shop, arrival("Premières fraises"))
        assert accepted.status_code == 202
        post_id = accepted.json()["id"]
        post = await near_client.wait_post(post_id, timeout=1.0)
        assert post["title"] == "Premières fraises"
        assert post["kind"] == "new_arrival"
        assert post["shop"] == {"id": near_shop.id, "name": "Primeur", "category": "bakery",
                                "lat": NEAR[0], "lon": NEAR[1], "address": "",
                                "timezone": "Europe/Paris"}
        for field in ("posted_at", "expires_at"):
            assert post[field].endswith("Z")
        # The feed is ordered: once the far client has a later post from its own street,
        # it can no longer receive the first one.
        marker = (await send_post(http, far_shop, arrival("Agneau de Pauillac"))).json()["id"]
        await far_client.wait_post(marker)
        assert far_client.post_ids() == [marker]
        # And the near client, once it has a later post of its own, never had the marker.
        later = (await send_post(http, near_shop, arrival("Cerises"))).json()["id"]
        await near_client.wait_post(later)
        assert marker not in near_client.post_ids()


async def test_kind_filter(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Cave", *NEAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET, kinds="flash_offer") as offers_only, \
            feed_client(web.ws, *STREET) as everything:
        news = (await send_post(http, shop, arrival())).json()["id"]
        offer = (await send_post(http, shop, flash())).json()["id"]
        await everything.wait_post(offer)
        await offers_only.wait_post(offer)
        assert everything.post_ids() == [news, offer]
        assert offers_only.post_ids() == [offer]


async def test_snapshot_nearest_first_then_live(redis: Redis, settings: Settings) -> None:
    shops = [await add_shop(redis, settings, f"Shop {i}", STREET[0] + d, STREET[1])
             for i, d in enumerate([0.003, 0.001, 0.002])]  # ~330 m, 110 m, 220 m
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        ids = [(await send_post(http, s, arrival(f"from {s.name}"))).json()["id"] for s in shops]

        async def all_live() -> bool:
            return await redis.zcard(keys.active_geo(settings.region)) == 3
        await wait_for(all_live)
        expected = [ids[1], ids[2], ids[0]]
        feed = (await http.get("/api/v1/feed", params={"lat": STREET[0], "lon": STREET[1],
                                                         "radius_m": 1000})).json()
        assert [p["id"] for p in feed["posts"]] == expected
        assert feed["cursor"]
        narrow = (await http.get("/api/v1/feed", params={"lat": STREET[0], "lon": STREET[1],
                                                           "radius_m": 250})).json()
        assert [p["id"] for p in narrow["posts"]] == [ids[1], ids[2]]
        async with feed_client(web.ws, *STREET, radius_m=1000) as client:
            assert client.post_ids() == expected
            later = (await send_post(http, shops[0], flash())).json()["id"]
            await client.wait_post(later)
            assert client.post_ids() == [*expected, later]


async def test_subscription_moves_without_reconnecting(redis: Redis, settings: Settings) -> None:
    here = await add_shop(redis, settings, "Ici", *NEAR)
    there = await add_shop(redis, settings, "Là-bas", *FAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET, radius_m=300) as client:
        old = (await send_post(http, there, arrival("before the move"))).json()["id"]
        first = (await send_post(http, here, arrival("here"))).json()["id"]
        await client.wait_post(first)
        await client.send({"type": "subscribe", "lat": FAR[0], "lon": FAR[1], "radius_m": 300})
        await wait_for(lambda: len(client.of_type("reset")) == 1, message="reset after move")
        await client.wait_ready(pings=2)
        # The fresh snapshot of the new area has the post made there before the move.
        assert client.post_ids() == [first, old]
        ignored = (await send_post(http, here, arrival("here again"))).json()["id"]
        wanted = (await send_post(http, there, arrival("there"))).json()["id"]
        await client.wait_post(wanted)
        assert ignored not in client.post_ids()


async def test_resume_across_gateway_restart_without_gap_or_duplicate(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *NEAR)
    async with enricher(redis, settings), httpx.AsyncClient() as http:
        async with web_server(settings) as first:
            http.base_url = httpx.URL(first.http)
            async with feed_client(first.ws, *STREET) as client:
                seen = [(await send_post(http, shop, arrival(f"a{i}"))).json()["id"]
                        for i in range(3)]
                await client.wait_post(seen[-1])
                cursor = client.cursor
        # Gateway down: posts keep being accepted and enriched (through another web process).
        async with web_server(settings) as api_only:
            http.base_url = httpx.URL(api_only.http)
            missed = [(await send_post(http, shop, arrival(f"b{i}"))).json()["id"]
                      for i in range(4)]

            async def all_published() -> bool:
                return await redis.xlen(keys.feed_stream(settings.region)) == 7
            await wait_for(all_published)
        async with web_server(settings) as second, \
                feed_client(second.ws, *STREET, cursor=cursor) as resumed:
            assert resumed.post_ids() == missed
            assert not resumed.of_type("reset")
            http.base_url = httpx.URL(second.http)
            live = (await send_post(http, shop, arrival("c"))).json()["id"]
            await resumed.wait_post(live)
            assert resumed.post_ids() == [*missed, live]


async def test_cursor_past_retention_gets_reset_and_snapshot(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(feed_maxlen=100)
    shop = await add_shop(redis, settings, "Librairie", *NEAR)
    nearest = await add_shop(redis, settings, "Kiosque", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        async with feed_client(web.ws, *STREET) as client:
            first = (await send_post(http, nearest, arrival("first"))).json()["id"]
            await client.wait_post(first)
            old_cursor = client.cursor
        for i in range(400):
            await send_post(http, shop, arrival(f"filler {i}"))

        async def trimmed() -> bool:
            info = await redis.xinfo_stream(keys.feed_stream(settings.region))
            return info["entries-added"] >= 401 and info["length"] < 401
        await wait_for(trimmed)
        async with feed_client(web.ws, *STREET, cursor=old_cursor) as client:
            assert client.frames[0]["type"] == "reset"
            assert client.post_ids()[0] == first  # still live, nearest: heads the fresh snapshot
            assert len(client.posts()) == settings.snapshot_limit


async def test_idempotent_post(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Chocolaterie", *NEAR)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        body = arrival("Tablettes noisette")
        answers = [await send_post(http, shop, body, idempotency_key="k-1") for _ in range(3)]
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["id"] for a in answers}) == 1
        assert await redis.xlen(keys.in_stream(settings.region)) == 1
        other = await send_post(http, shop, body, idempotency_key="k-2")
        assert other.status_code == 202 and other.json()["id"] != answers[0].json()["id"]
        reused = await send_post(http, shop, arrival("something else"), idempotency_key="k-1")
        assert reused.status_code == 409
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        assert await redis.xlen(keys.in_stream(settings.region)) == 2


async def test_withdraw_reaches_clients_and_feed(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fleuriste", *NEAR)
    other = await add_shop(redis, settings, "Voisin", *NEAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as client:
        post_id = (await send_post(http, shop, arrival("Pivoines"))).json()["id"]
        await client.wait_post(post_id)
        stranger = await http.delete(f"/api/v1/shops/{other.id}/posts/{post_id}",
                                     headers={"Authorization": f"Bearer {other.token}"})
        assert stranger.status_code == 404
        gone = await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                 headers={"Authorization": f"Bearer {shop.token}"})
        assert gone.status_code == 200
        await wait_for(lambda: bool(client.of_type("withdrawn")))
        assert client.of_type("withdrawn")[0]["id"] == post_id
        feed = (await http.get("/api/v1/feed", params={"lat": STREET[0], "lon": STREET[1],
                                                         "radius_m": 500})).json()
        assert feed["posts"] == []
        again = await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                  headers={"Authorization": f"Bearer {shop.token}"})
        assert again.status_code == 404


async def test_shop_profile_and_healthz(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Café", *NEAR, category="café")  # its label
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        profile = await http.get(f"/api/v1/shops/{shop.id}")
        assert profile.status_code == 200
        assert profile.json() == {"id": shop.id, "name": "Café", "category": "cafe",
                                  "lat": NEAR[0], "lon": NEAR[1], "address": "",
                                  "open_now": None, "next_change": None,
                                  "timezone": None, "producers": [],  # DESIGN.md section 9
                                  "holds": True, "held_today": 0}  # issue 17
        assert "token" not in profile.text and "hash" not in profile.text
        missing = await http.get("/api/v1/shops/nope-000000")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "unknown_shop"
        health = await http.get("/healthz")
        assert health.status_code == 200
