"""A post's reach neither counts people under 5 nor locates a passer-by.

The attack these reproduce (issue 14): shops post, one passer-by opens a socket, each
shop edits its post and reads its reach. Every edit was delivered, and counted, again to
the sockets whose area contains the shop, so the shops whose reach rose were those within
the passer-by's radius, and a shop got a fresh exact count of the people around it at
every edit without opening any socket. Now only a post's first delivery counts, and a
shop is told "fewer than 5" under 5, through GET /stats and WS /ws/shop alike.

Real server, real Redis, real enricher, real WebSocket clients. "Counting has happened"
is waited for without sleeping: a post published after the edits (a barrier) is
dispatched after them, so once its own count is in Redis every count from the edits
would be too (each gateway flushes what it counted so far in one go).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from redis.asyncio import Redis

from runtime.settings import Settings
from schemas.shops import ShopCreated
from storage import keys
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
from tests.test_console_ws import ConsoleClient, console_socket

PASSER_BY = (44.8370, -0.5735)
# 70 m north of the passer-by: inside the 500 m the passer-by watches.
NEAR = (PASSER_BY[0] + 0.00063, PASSER_BY[1])
# 700 m south: outside it.
APART = (PASSER_BY[0] - 0.0063, PASSER_BY[1])
HIDDEN = {"phone": None, "screen": None, "fewer_than": 5}


async def counted(redis: Redis, settings: Settings, post_id: str) -> dict[str, int]:
    """What the gateways counted for a post (Redis), before any floor."""
    raw = await redis.hgetall(keys.reach(settings.region, post_id))
    return {k.decode(): int(v) for k, v in raw.items()}


async def stats_reach(http: httpx.AsyncClient, shop: ShopCreated) -> dict[str, Any]:
    answer = await http.get(f"/api/v1/shops/{shop.id}/stats",
                            headers={"Authorization": f"Bearer {shop.token}"})
    assert answer.status_code == 200, answer.text
    reach: dict[str, Any] = answer.json()["reach"]
    return reach


async def edit(http: httpx.AsyncClient, shop: ShopCreated, post_id: str, title: str) -> None:
    answer = await http.patch(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                              json={"title": title},
                              headers={"Authorization": f"Bearer {shop.token}"})
    assert answer.status_code == 202, answer.text


async def delivered(client: FeedClient, post_id: str, title: str) -> None:
    await wait_for(lambda: any(p["id"] == post_id and p["title"] == title
                               for p in client.posts()), message=f"{title!r} delivered")


def console_reach(console: ConsoleClient) -> list[dict[str, Any]]:
    """Every reach the console socket was told, of every post, in order."""
    return [r for f in console.of_type("stats") for r in f["reach"].values()]


def last_reach(console: ConsoleClient) -> dict[str, Any]:
    stats = console.of_type("stats")
    return stats[-1]["reach"] if stats else {}  # type: ignore[no-any-return]


def assert_floored(reaches: list[dict[str, Any]]) -> None:
    for reach in reaches:
        for field in ("phone", "screen"):
            count = reach[field]
            assert count is None or count >= 5, reach  # never 0 to 4
            if count is None:
                assert reach["fewer_than"] == 5, reach


async def test_a_lone_passer_by_is_neither_counted_nor_located(
        redis: Redis, settings: Settings) -> None:
    near = await add_shop(redis, settings, "Dans le rayon", *NEAR)
    apart = await add_shop(redis, settings, "Hors du rayon", *APART)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            console_socket(web.ws, token=near) as near_console, \
            console_socket(web.ws, token=apart) as apart_console:
        # Both shops post first, as the attacker did, then the passer-by arrives.
        posts = {}
        for shop in (near, apart):
            posts[shop.id] = (await send_post(http, shop, arrival("Avant"))).json()["id"]
        await near_console.wait("post")
        await apart_console.wait("post")
        async with feed_client(web.ws, *PASSER_BY, radius_m=500) as passer_by:
            await passer_by.wait_post(posts[near.id])  # in its snapshot: never counted
            # Each shop edits its post a few times: the near one's edits reach the passer-by.
            for n in range(1, 4):
                for shop, console in ((near, near_console), (apart, apart_console)):
                    await edit(http, shop, posts[shop.id], f"Retouche {n}")
                    await console.wait("post", 1 + n)  # dispatched by this process
                await delivered(passer_by, posts[near.id], f"Retouche {n}")
            # A new post of the near shop: its first delivery, counted, after every edit.
            barrier = (await send_post(http, near, arrival("Après"))).json()["id"]
            await passer_by.wait_post(barrier)

            async def barrier_counted() -> bool:
                return await counted(redis, settings, barrier) == {"phone": 1}
            await wait_for(barrier_counted, message="the barrier post's first delivery counted")

            # The edits were not counted: the passer-by's socket opened after the posts.
            assert await counted(redis, settings, posts[near.id]) == {}
            # Both shops are told the same thing of their first post, and nothing under 5:
            # which of them is within the passer-by's radius cannot be told.
            near_reach = await stats_reach(http, near)
            apart_reach = await stats_reach(http, apart)
            assert near_reach == {posts[near.id]: HIDDEN, barrier: HIDDEN}
            assert apart_reach == {posts[apart.id]: HIDDEN}

            # The console sockets said the same, in every stats frame they got.
            await wait_for(lambda: last_reach(near_console).get(barrier) == HIDDEN,
                           message="the near console told of the barrier post")
            await wait_for(lambda: last_reach(apart_console).get(posts[apart.id]) == HIDDEN,
                           message="the apart console told of its post")
            for console in (near_console, apart_console):
                told = console_reach(console)
                assert told and all(r == HIDDEN for r in told), told


async def test_reach_from_five_is_exact_and_edits_do_not_add(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *NEAR)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            console_socket(web.ws, token=shop) as console, \
            contextlib.AsyncExitStack() as street:
        clients = [await street.enter_async_context(feed_client(web.ws, *PASSER_BY))
                   for _ in range(5)]
        clients += [await street.enter_async_context(
            feed_client(web.ws, *NEAR, client="screen")) for _ in range(5)]
        made = (await send_post(http, shop, arrival("Clémentines"))).json()["id"]
        for client in clients:
            await client.wait_post(made)
        exact = {"phone": 5, "screen": 5}

        async def reached() -> bool:
            return (await stats_reach(http, shop)).get(made) == exact
        await wait_for(reached, message="reach of 5 phones and 5 screens")

        for n in range(1, 4):
            await edit(http, shop, made, f"Clémentines, retouche {n}")
            for client in clients:
                await delivered(client, made, f"Clémentines, retouche {n}")
        barrier = (await send_post(http, shop, arrival("Après"))).json()["id"]
        for client in clients:
            await client.wait_post(barrier)

        async def barrier_reached() -> bool:
            return (await stats_reach(http, shop)).get(barrier) == exact
        await wait_for(barrier_reached, message="the barrier post's reach")
        # Three edits delivered to the same ten sockets: the reach is what it was.
        assert await counted(redis, settings, made) == {"phone": 5, "screen": 5}
        assert (await stats_reach(http, shop))[made] == exact

        # The console socket: the same counts, never more, never a number under 5.
        await wait_for(lambda: last_reach(console) == {made: exact, barrier: exact},
                       message="the console's reach")
        assert_floored(console_reach(console))
        assert {r["phone"] for r in console_reach(console)} <= {None, 5}
        assert {r["screen"] for r in console_reach(console)} <= {None, 5}
