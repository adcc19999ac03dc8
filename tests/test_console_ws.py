"""WS /ws/shop, the console's own socket: a snapshot, then changes pushed, never polled.

Real server, real Redis, real enricher, real WebSocket clients: the shop's posts made,
corrected and withdrawn through the API arrive on the socket; people watching arrive as
passers-by connect (still "fewer than 5" under 5); a profile change, a rotated token and
the feed's refusals behave as on /ws/feed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime.settings import Settings
from schemas.shops import ShopCreated
from tests.helpers import (
    FeedClient,
    add_shop,
    arrival,
    enricher,
    feed_client,
    send_post,
    wait_for,
    web_server,
)

STREET = (44.8370, -0.5735)


class ConsoleClient(FeedClient):
    """A real /ws/shop client: records every frame, as FeedClient does for /ws/feed."""

    async def wait(self, kind: str, count: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        await wait_for(lambda: len(self.of_type(kind)) >= count, timeout,
                       f"{count} {kind} frame(s)")
        return self.of_type(kind)[count - 1]

    def watching(self, radius: int = 500) -> dict[str, Any] | None:
        stats = self.of_type("stats")
        if not stats:
            return None
        return next(w for w in stats[-1]["watching"] if w["radius_m"] == radius)


@contextlib.asynccontextmanager
async def console_socket(base: str, *, cookie: str | None = None, origin: str | None = None,
                         token: ShopCreated | None = None,
                         query: str | None = None) -> AsyncIterator[ConsoleClient]:
    """`query`: instead of the token's own `?shop=`."""
    headers: dict[str, str] = {}
    url = f"{base}/ws/shop"
    if cookie is not None:
        headers["Cookie"] = cookie
    if token is not None:
        headers["Authorization"] = f"Bearer {token.token}"
        url += query if query is not None else f"?shop={token.id}"
    async with connect(url, additional_headers=headers, origin=origin) as ws:  # type: ignore[arg-type]
        client = ConsoleClient(ws)
        client.task = asyncio.create_task(client._pump())
        try:
            yield client
        finally:
            await client.close()


async def signed_in(http: httpx.AsyncClient, shop: ShopCreated) -> str:
    answer = await http.post("/api/v1/session", json={"shop_id": shop.id, "token": shop.token})
    assert answer.status_code == 200, answer.text
    return f"sf_session={answer.cookies['sf_session']}"


async def test_console_socket_pushes_posts_audience_and_reach(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    neighbour = await add_shop(redis, settings, "Voisin", *STREET)  # the same doorstep
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        before = (await send_post(http, shop, arrival("Déjà là"))).json()["id"]
        await wait_for(lambda: redis.exists(f"sf:{{main}}:post:{before}"))
        cookie = await signed_in(http, shop)
        async with console_socket(web.ws, cookie=cookie, origin=web.http) as console:
            first = await console.wait("shop")
            assert first["shop"]["id"] == shop.id and first["shop"]["name"] == "Primeur"
            posts = await console.wait("posts")
            assert [p["id"] for p in posts["posts"]] == [before]
            stats = await console.wait("stats")
            # Under 5, never a number (the GET /stats rule).
            assert all(w["count"] is None and w["fewer_than"] == 5 for w in stats["watching"])
            assert stats["reach"] == {before: {"phone": None, "screen": None,
                                               "fewer_than": 5}}

            # Five passers-by nearby: pushed, as a count.
            async with contextlib.AsyncExitStack() as street:
                for _ in range(5):
                    await street.enter_async_context(feed_client(web.ws, *STREET))
                await wait_for(lambda: (console.watching() or {}).get("count") == 5,
                               5, "5 people watching")

                # A post through the API by token appears, then its reach (5 phones).
                made = (await send_post(http, shop, arrival("Clémentines"))).json()["id"]
                frame = await console.wait("post")
                assert frame["post"]["id"] == made
                await wait_for(lambda: console.of_type("stats")[-1]["reach"].get(made)
                               == {"phone": 5, "screen": None, "fewer_than": 5}, 5,
                               "reach of 5 phones (no screen: fewer than 5)")

                # The neighbour's post, from the same position, is not ours.
                await send_post(http, neighbour, arrival("Pas à nous"))
                edited = await http.patch(f"/api/v1/shops/{shop.id}/posts/{made}",
                                          json={"title": "Clémentines corses", "price": 3.5},
                                          headers={"Authorization": f"Bearer {shop.token}"})
                assert edited.status_code == 202
                corrected = await console.wait("post", 2)
                assert corrected["post"]["title"] == "Clémentines corses"
                assert corrected["post"]["price"] == 3.5
            await wait_for(lambda: (console.watching() or {}).get("count") is None,
                           8, "fewer than 5 again")

            gone = await http.delete(f"/api/v1/shops/{shop.id}/posts/{made}",
                                     headers={"Authorization": f"Bearer {shop.token}"})
            assert gone.status_code == 200
            withdrawn = await console.wait("withdrawn")
            assert withdrawn == {"type": "withdrawn", "id": made}
            assert [f["post"]["id"] for f in console.of_type("post")] == [made, made]


async def test_console_socket_profile_changes_and_refusals(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Fleuriste", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        # Not signed in: told why in a frame (a browser cannot read a refused handshake).
        async with console_socket(web.ws, origin=web.http) as anonymous:
            await anonymous.closed.wait()
        assert anonymous.close_code == 1008
        assert anonymous.of_type("error")[0]["error"]["code"] == "not_signed_in"
        # Another origin is refused before the handshake, as on /ws/feed.
        cookie = await signed_in(http, shop)
        with pytest.raises(InvalidStatus) as refused:
            async with console_socket(web.ws, cookie=cookie, origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403

        # `?shop=` twice: which would count? Refused, as a duplicate on /ws/feed is (it
        # opened as the last one: a cold attacker's find, no bypass but not refused).
        other = await add_shop(redis, settings, "Voisin", *STREET)
        async with console_socket(web.ws, token=shop,
                                  query=f"?shop={other.id}&shop={shop.id}") as twice:
            await asyncio.wait_for(twice.closed.wait(), 5)
        assert twice.close_code == 1008
        assert twice.of_type("error")[0]["error"]["code"] == "invalid_query"
        assert twice.of_type("shop") == []

        # A token works too (API clients), and the hours a shop sets are pushed.
        auth = {"Authorization": f"Bearer {shop.token}"}
        async with console_socket(web.ws, token=shop) as by_token, \
                console_socket(web.ws, cookie=cookie, origin=web.http) as by_cookie:
            for console in (by_token, by_cookie):
                assert (await console.wait("shop"))["shop"]["open_now"] is None
            every_day = {d: [{"open": "00:00", "close": "24:00"}]
                         for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
            put = await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth,
                                 json={"timezone": "Europe/Paris", "weekly": every_day})
            assert put.status_code == 200, put.text
            for console in (by_token, by_cookie):
                changed = await console.wait("shop", 2)
                assert changed["shop"]["open_now"] is True

        # The shop's own word overrides its hours, pushed as it is posted and withdrawn.
        async with enricher(redis, settings), \
                console_socket(web.ws, cookie=cookie, origin=web.http) as console:
            assert (await console.wait("shop"))["shop"]["open_now"] is True
            closed = await send_post(http, shop, {"kind": "opening_change", "title": "Inventaire",
                                                  "status": "closed_exceptionally"})
            assert (await console.wait("shop", 2))["shop"]["open_now"] is False
            assert (await http.delete(f"/api/v1/shops/{shop.id}/posts/{closed.json()['id']}",
                                      headers=auth)).status_code == 200
            assert (await console.wait("shop", 3))["shop"]["open_now"] is True

        async with console_socket(web.ws, token=shop) as by_token, \
                console_socket(web.ws, cookie=cookie, origin=web.http) as by_cookie:
            # A rotated token ends every socket opened with the old one.
            rotated = await http.post(f"/api/v1/shops/{shop.id}/token", headers=auth)
            assert rotated.status_code == 200
            for console in (by_token, by_cookie):
                await asyncio.wait_for(console.closed.wait(), 5)
                assert console.close_code == 1008
                assert console.of_type("error")[-1]["error"]["code"] == "not_signed_in"
        # Signing out in one tab ends that session's sockets in the others, at once; a
        # socket of another session of the same shop stays.
        shop = msgspec.structs.replace(shop, token=rotated.json()["token"])
        async with httpx.AsyncClient(base_url=web.http) as elsewhere_http:
            other = await signed_in(elsewhere_http, shop)
        new_cookie = await signed_in(http, shop)
        async with console_socket(web.ws, cookie=new_cookie, origin=web.http) as tab, \
                console_socket(web.ws, cookie=other, origin=web.http) as elsewhere:
            await tab.wait("posts")
            await elsewhere.wait("posts")
            out = await http.delete("/api/v1/session", headers={"Origin": web.http})
            assert out.status_code == 204
            await asyncio.wait_for(tab.closed.wait(), 5)
            assert tab.of_type("error")[-1]["error"]["code"] == "not_signed_in"
            assert not elsewhere.closed.is_set()
        state = web.state
        assert not state.console.consoles.watches  # type: ignore[attr-defined]
        assert state.gateway.per_address == {}


async def test_console_socket_told_when_the_feed_cannot_be_read(
        redis: Redis, settings: Settings) -> None:
    """The feed's liveness rule (DESIGN.md section 9) holds on the console's socket too: the
    web process's liveness check says a region cannot be read, and its consoles hear it."""
    shop = await add_shop(redis, settings, "Bouquiniste", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        cookie = await signed_in(http, shop)
        async with console_socket(web.ws, cookie=cookie, origin=web.http) as console:
            await console.wait("posts")
            hub = web.state.hub
            hub.set_down({"main": "2026-11-30T05:00:00Z"})
            down = await console.wait("status")
            assert down == {"type": "status", "live": False, "since": "2026-11-30T05:00:00Z"}
            hub.set_down({})
            assert await console.wait("status", 2) == {"type": "status", "live": True}


async def test_console_socket_pushes_the_shops_producers(
        redis: Redis, settings: Settings) -> None:
    """Two screens of one shop: a producer named or unlinked on one (or by an API client)
    reaches the other's socket, which offered only what it had read when it opened."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    other = await add_shop(redis, settings, "Voisin", *STREET)
    bearer = {"Authorization": f"Bearer {shop.token}"}
    mill = {"name": "Moulin de Saint-Émilion", "place": "Saint-Émilion",
            "lat": 44.894, "lon": -0.155}
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        cookie = await signed_in(http, shop)
        async with console_socket(web.ws, cookie=cookie, origin=web.http) as console, \
                console_socket(web.ws, token=other, origin=web.http) as neighbour:
            first = await console.wait("producers")
            assert first == {"type": "producers", "producers": []}
            assert [f["type"] for f in console.frames[:4]] == ["shop", "producers", "holds",
                                                               "posts"]
            named = await http.post(f"/api/v1/shops/{shop.id}/producers", json=mill,
                                    headers=bearer)
            assert named.status_code == 201, named.text
            producer_id = named.json()["id"]
            pushed = await console.wait("producers", 2)
            assert pushed["producers"] == [{"id": producer_id, "name": mill["name"],
                                            "place": "Saint-Émilion", "distance_km": 33.6}]
            # As the profile says it, and a socket opened now starts with it.
            profile = (await http.get(f"/api/v1/shops/{shop.id}")).json()
            assert profile["producers"] == pushed["producers"]
            async with console_socket(web.ws, token=shop, origin=web.http) as later:
                assert (await later.wait("producers"))["producers"] == pushed["producers"]
            # Naming it again changes nothing: nothing is pushed.
            again = await http.post(f"/api/v1/shops/{shop.id}/producers", json=mill,
                                    headers=bearer)
            assert again.json()["id"] == producer_id
            gone = await http.delete(f"/api/v1/shops/{shop.id}/producers/{producer_id}",
                                     headers=bearer)
            assert gone.status_code == 204
            assert (await console.wait("producers", 3))["producers"] == []
            assert len(console.of_type("producers")) == 3
            # Another shop's socket is told nothing of it.
            assert [f["producers"] for f in neighbour.of_type("producers")] == [[]]
