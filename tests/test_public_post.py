"""`GET /api/v1/posts/{post_id}` (issue 18; an extension of DESIGN.md section 9): the
page an alert's link opens (`/?post=<id>`) reads the post there. It answers the post
exactly as the feed delivers it, while it is live; once withdrawn, ended (even before the
scheduler swept it) or for an id that never was, 410 `post_gone`. A real uvicorn, enricher
and Redis-compatible server.
"""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from rules.clock import ManualClock
from runtime.settings import Settings
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    enricher,
    flash,
    live_post,
    web_server,
)

STREET = (44.8370, -0.5735)


def gone(answer: httpx.Response) -> bool:
    return answer.status_code == 410 and answer.json()["error"]["code"] == "post_gone"


async def test_a_live_post_is_answered_as_the_feed_delivers_it(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur du Marché", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, arrival(
            "Fraises de Plougastel", hold={"quantity": 3, "minutes": 30}))
        answer = await http.get(f"/api/v1/posts/{post_id}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"  # `hold.left` changes
        feed = (await http.get("/api/v1/feed", params={
            "lat": STREET[0], "lon": STREET[1], "radius_m": 500})).json()
        assert answer.json() == feed["posts"][0]
        # Nothing of the shop's own view: who holds, how many saw it, what it typed.
        own = (await http.get(f"/api/v1/shops/{shop.id}/posts", headers=auth(shop))).json()
        assert answer.json() == own["posts"][0]
        text = answer.text
        for private in ('"raw"', '"source"', '"reach"', '"name":"Léa"', "token"):
            assert private not in text

        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                      headers=auth(shop))
        assert withdrawn.status_code == 200
        assert gone(await http.get(f"/api/v1/posts/{post_id}"))


async def test_an_ended_unknown_or_malformed_post_is_gone(redis: Redis,
                                                          settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET, category="cheese")
    clock = ManualClock()
    async with web_server(settings, clock=clock) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, flash("Comté -20 %", minutes=20))
        assert (await http.get(f"/api/v1/posts/{post_id}")).status_code == 200
        # Its end has passed, the scheduler has not swept it yet: still never shown.
        clock.advance(21 * 60)
        assert gone(await http.get(f"/api/v1/posts/{post_id}"))
        for unknown in ("p_aaaaaaaaaaaaaaaa", "p_AAAA", "x" * 64, "p_aaaaaaaaaaaaaaaa%27--"):
            assert gone(await http.get(f"/api/v1/posts/{unknown}")), unknown


async def test_the_route_is_in_the_openapi_document(redis: Redis, settings: Settings) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        document = (await http.get("/openapi.json")).json()
        get = document["paths"]["/api/v1/posts/{post_id}"]["get"]
        assert "410" in get["responses"]
        assert get["parameters"][0]["schema"]["pattern"] == r"^p_[a-z0-9]{16}$"
