"""A shop's own opening_change post tells its open/closed state, everywhere (issue 14).

"Ouvert tard jusqu'à 00:57" used to sit next to a red "Fermé": the state came from the
weekly hours alone. From outside: the API's profile and list, the feed socket, the
scheduler's automatic posts, with one ManualClock for every part.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from arq.connections import ArqRedis
from redis.asyncio import Redis

from rules.clock import ManualClock
from runtime.settings import Settings
from schemas.shops import ShopCreated
from storage import keys
from tests.helpers import FeedClient, add_shop, feed_client, send_post, wait_for
from tests.test_schedule import STREET, auth, pool, street
from workers.scheduler import opening_changes, sweep_expired, worker_context

__all__ = ["pool"]  # the fixture, used by name

HOURS = {"timezone": "Europe/Paris", "weekly": {
    d: [{"open": "07:00", "close": "19:00"}] for d in ("tue", "wed")}}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _state(http: httpx.AsyncClient, shop: ShopCreated) -> tuple[Any, Any, Any]:
    """(open_now, next_change) of the profile, and the shop's entry of the list."""
    profile = (await http.get(f"/api/v1/shops/{shop.id}")).json()
    listed = next(s for s in (await http.get("/api/v1/shops")).json()["shops"]
                  if s["id"] == shop.id)
    assert (listed["open_now"], listed["next_change"]) == (profile["open_now"],
                                                          profile["next_change"])
    return profile["open_now"], profile["next_change"], listed


@contextlib.asynccontextmanager
async def hours_street(redis: Redis, settings: Settings, pool: ArqRedis, clock: ManualClock,
                       name: str) -> AsyncIterator[
        tuple[ShopCreated, dict[str, Any], httpx.AsyncClient, FeedClient]]:
    """A shop given HOURS on a street served at `clock`, a passer-by's socket there, and
    the scheduler's context (which has nothing to post yet)."""
    shop = await add_shop(redis, settings, name, *STREET)
    ctx = worker_context(settings, pool, clock)
    async with street(redis, settings, clock) as (web, http), \
            feed_client(web.ws, *STREET) as client:
        assert (await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth(shop),
                               json=HOURS)).status_code == 200
        assert await opening_changes(ctx) == 0
        yield shop, ctx, http, client


async def test_open_late_keeps_the_shop_open_and_the_scheduler_quiet(
        redis: Redis, settings: Settings, pool: ArqRedis) -> None:
    clock = ManualClock(utc(2026, 11, 24, 17, 0))  # Tuesday 18:00 in Paris
    async with hours_street(redis, settings, pool, clock, "Cave") as (shop, ctx, http, client):
        # The list is cached (services.directory): read it once before the post.
        assert (await _state(http, shop))[:2] == (
            True, {"at": "2026-11-24T18:00:00Z", "open": False})
        late = await send_post(http, shop, {
            "kind": "opening_change", "title": "Ouvert tard jusqu'à 00:57",
            "status": "open_late", "until": "2026-11-24T23:57:00Z"})
        assert late.status_code == 202
        await wait_for(lambda: late.json()["id"] in client.post_ids())
        assert (await _state(http, shop))[:2] == (
            True, {"at": "2026-11-24T23:57:00Z", "open": False})

        # 19:00 passes: the hours say closed, the shop says open late.
        clock.set(utc(2026, 11, 24, 18, 0, 20))
        assert await opening_changes(ctx) == 0  # no "Fermé" while open late
        assert (await _state(http, shop))[:2] == (
            True, {"at": "2026-11-24T23:57:00Z", "open": False})

        # The shopkeeper moves the end to 23:30 local: the state follows the edit.
        edit = await http.patch(f"/api/v1/shops/{shop.id}/posts/{late.json()['id']}",
                                headers=auth(shop), json={"until": "2026-11-24T22:30:00Z"})
        assert edit.status_code == 202
        await wait_for(lambda: len([p for p in client.posts() if p["id"] == late.json()["id"]])
                       == 2)
        assert (await _state(http, shop))[:2] == (
            True, {"at": "2026-11-24T22:30:00Z", "open": False})

        # The post ends: closed, and the scheduler says so (the hours again).
        clock.set(utc(2026, 11, 24, 22, 30, 20))
        assert await sweep_expired(ctx) == 1
        assert (await _state(http, shop))[:2] == (
            False, {"at": "2026-11-25T06:00:00Z", "open": True})
        assert await opening_changes(ctx) == 1
        assert await opening_changes(ctx) == 0
        await wait_for(lambda: any(p["auto"] for p in client.posts()))
        closed = next(p for p in client.posts() if p["auto"])
        assert (closed["status"], closed["title"], closed["posted_at"]) == (
            "closed_now", "Fermé, réouverture mercredi à 07:00", "2026-11-24T22:30:00Z")
        assert closed["timezone"] == "Europe/Paris"


async def test_an_exceptional_closure_replaces_the_hours_until_withdrawn(
        redis: Redis, settings: Settings, pool: ArqRedis) -> None:
    clock = ManualClock(utc(2026, 11, 24, 5, 59))  # Tuesday 06:59 in Paris
    async with hours_street(redis, settings, pool, clock, "Primeur") as (shop, ctx, http, client):
        clock.set(utc(2026, 11, 24, 6, 0, 20))
        assert await opening_changes(ctx) == 1  # "Ouvert jusqu'à 19:00"
        await wait_for(lambda: len(client.posts()) == 1)
        opened = client.posts()[0]
        assert opened["auto"] and opened["status"] == "open_now"

        clock.set(utc(2026, 11, 24, 9, 0))
        closure = await send_post(http, shop, {
            "kind": "opening_change", "title": "Fermeture exceptionnelle (inventaire)",
            "status": "closed_exceptionally", "until": "2026-11-24T15:00:00Z"})
        assert closure.status_code == 202
        closure_id = closure.json()["id"]
        await wait_for(lambda: closure_id in client.post_ids())
        # The automatic "open until 19:00" would contradict it on the street: withdrawn.
        await wait_for(lambda: [f["id"] for f in client.of_type("withdrawn")] == [opened["id"]])
        assert (await _state(http, shop))[:2] == (
            False, {"at": "2026-11-24T15:00:00Z", "open": True})

        # Withdrawn at 11:00: open again at once, and the scheduler posts the hours again.
        clock.set(utc(2026, 11, 24, 10, 0))
        withdrawn = await http.delete(f"/api/v1/shops/{shop.id}/posts/{closure_id}",
                                      headers=auth(shop))
        assert withdrawn.status_code == 200
        assert (await _state(http, shop))[:2] == (
            True, {"at": "2026-11-24T18:00:00Z", "open": False})
        clock.set(utc(2026, 11, 24, 10, 0, 30))
        assert await opening_changes(ctx) == 1
        await wait_for(lambda: sum(p["auto"] for p in client.posts()) == 2)
        again = [p for p in client.posts() if p["auto"]][-1]
        assert (again["status"], again["title"], again["posted_at"]) == (
            "open_now", "Ouvert jusqu'à 19:00", "2026-11-24T10:00:00Z")

        # Kept (ended) a day for the scheduler to see its end, then forgotten.
        region = settings.region
        assert await redis.exists(keys.openings(region, shop.id)) == 1
        clock.set(utc(2026, 11, 25, 10, 1))
        await opening_changes(ctx)
        assert await redis.exists(keys.openings(region, shop.id)) == 0
        assert not await redis.sismember(keys.opening_shops(region), shop.id)


async def _opening_posted(http: httpx.AsyncClient, shop: ShopCreated, client: FeedClient,
                          body: dict[str, Any]) -> str:
    """An opening_change post, accepted and seen on the street; its id."""
    answer = await send_post(http, shop, {"kind": "opening_change", **body})
    assert answer.status_code == 202, answer.text
    post_id: str = answer.json()["id"]
    await wait_for(lambda: post_id in client.post_ids())
    return post_id


async def test_a_later_word_withdraws_the_earlier_one_it_masks_for_good(
        redis: Redis, settings: Settings, pool: ArqRedis) -> None:
    """"Open until 22:00", then "closed now" for the rest of the day: both cards stayed on
    the street, one saying open and one closed (a cold user's find). The earlier one is
    withdrawn when the later one is published; one the later outlives stays."""
    clock = ManualClock(utc(2026, 11, 24, 9, 0))  # Tuesday 10:00 in Paris
    async with hours_street(redis, settings, pool, clock, "Café") as (shop, _, http, client):
        async def post(body: dict[str, Any]) -> str:
            return await _opening_posted(http, shop, client, body)

        late = await post({"title": "Ouvert jusqu'à 22:00", "status": "open_late",
                           "until": "2026-11-24T21:00:00Z"})
        clock.set(utc(2026, 11, 24, 10, 0))
        back = await post({"title": "Fermé, retour à 14:00", "status": "closed_now",
                           "until": "2026-11-24T13:00:00Z"})
        # "Back at 14:00" ends before "until 22:00": that one governs again from 14:00.
        assert (await _state(http, shop))[:2] == (
            False, {"at": "2026-11-24T13:00:00Z", "open": True})
        clock.set(utc(2026, 11, 24, 11, 0))
        closed = await post({"title": "Fermé pour la journée", "status": "closed_now"})
        await wait_for(lambda: {f["id"] for f in client.of_type("withdrawn")} == {late, back},
                       message="both earlier posts withdrawn")
        assert (await _state(http, shop))[0] is False
        live = await http.get(f"/api/v1/shops/{shop.id}/posts", headers=auth(shop))
        assert [p["id"] for p in live.json()["posts"]] == [closed]


async def test_open_late_withdraws_a_closed_now_that_then_says_what_the_hours_say(
        redis: Redis, settings: Settings, pool: ArqRedis) -> None:
    """"Closed now" (no time: for the rest of the day), then "open late until 23:00" in a
    shop that closes at 19:00: both stayed on the street, one closed and one open (a cold
    user's find), though past 23:00 the first says only what the hours say."""
    clock = ManualClock(utc(2026, 11, 24, 13, 0))  # Tuesday 14:00 in Paris
    async with hours_street(redis, settings, pool, clock, "Café") as (shop, _, http, client):
        async def post(body: dict[str, Any]) -> str:
            return await _opening_posted(http, shop, client, body)

        closed = await post({"title": "Fermé pour le moment", "status": "closed_now"})
        assert (await _state(http, shop))[0] is False
        clock.set(utc(2026, 11, 24, 16, 0))
        late = await post({"title": "Ouvert ce soir jusqu'à 23:00", "status": "open_late",
                           "until": "2026-11-24T22:00:00Z"})
        await wait_for(lambda: {f["id"] for f in client.of_type("withdrawn")} == {closed},
                       message="'closed now' withdrawn")
        assert (await _state(http, shop))[:2] == (
            True, {"at": "2026-11-24T22:00:00Z", "open": False})
        live = await http.get(f"/api/v1/shops/{shop.id}/posts", headers=auth(shop))
        assert [p["id"] for p in live.json()["posts"]] == [late]
