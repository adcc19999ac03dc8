"""Time as a first-class part: expiry, edits, opening hours, registry changes.

A ManualClock shared by every in-process component stands in for time; the
arq jobs are called with the worker's own context, or run by a real arq worker
in burst mode where real time is short enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from rules.clock import ManualClock, SystemClock
from runtime.logs import QuietRoutineJobs
from runtime.settings import Settings
from schemas.shops import ShopCreated
from storage import keys
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    enricher,
    feed_client,
    send_post,
    wait_for,
    web_server,
)
from workers.scheduler import (
    expire_post,
    make_worker,
    opening_changes,
    sweep_expired,
    worker_context,
)

STREET = (44.8370, -0.5735)
# Tuesday 2026-11-24, 06:30 in Paris (UTC+1).
TUESDAY_0630 = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)


@pytest.fixture
async def pool(settings: Settings, redis: Redis) -> AsyncIterator[ArqRedis]:
    arq_pool = ArqRedis.from_url(settings.redis_url)  # type: ignore[arg-type]
    try:
        yield arq_pool
    finally:
        await arq_pool.aclose()


def offer(ends_at: datetime, title: str = "-30 % jusqu'à 18h") -> dict[str, Any]:
    return {"kind": "flash_offer", "title": title, "ends_at": ends_at.isoformat()}


@contextlib.asynccontextmanager
async def street(redis: Redis, settings: Settings, clock: ManualClock) -> AsyncIterator[
        tuple[Any, httpx.AsyncClient]]:
    async with web_server(settings, clock=clock) as web, enricher(redis, settings, clock), \
            httpx.AsyncClient(base_url=web.http) as http:
        yield web, http


async def _feed_ids(http: httpx.AsyncClient) -> list[str]:
    feed = await http.get("/api/v1/feed", params={"lat": STREET[0], "lon": STREET[1],
                                                   "radius_m": 500})
    return [p["id"] for p in feed.json()["posts"]]


async def test_expiry_reaches_clients_and_feed_api(redis: Redis, settings: Settings,
                                                   pool: ArqRedis) -> None:
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    ctx = worker_context(settings, pool, clock)
    async with street(redis, settings, clock) as (web, http), \
            feed_client(web.ws, *STREET) as client:
        ends = clock.now() + timedelta(minutes=10)
        post_id = (await send_post(http, shop, offer(ends))).json()["id"]
        await client.wait_post(post_id)
        assert await expire_post(ctx, settings.region, post_id) is False  # not due yet
        assert await _feed_ids(http) == [post_id]
        clock.advance(10 * 60 + 1)
        # Past its end the post is hidden at once, even before the scheduler runs...
        assert await _feed_ids(http) == []
        # ...and the scheduler takes it off the street and tells every client.
        assert await sweep_expired(ctx) == 1
        await wait_for(lambda: [f["id"] for f in client.of_type("expired")] == [post_id])
        assert await redis.zcard(keys.active_geo(settings.region)) == 0
        # Idempotent: the deferred job arriving late changes nothing more.
        assert await expire_post(ctx, settings.region, post_id) is False
        assert await sweep_expired(ctx) == 0
        async with feed_client(web.ws, *STREET) as late_comer:
            assert late_comer.post_ids() == []


async def test_the_sweep_ends_every_due_post_at_once_and_declines_their_holds(
        redis: Redis, settings: Settings, pool: ArqRedis) -> None:
    """Midnight ends many posts in one sweep (expire_many: one round trip for their scripts):
    each due post gets its tombstone, pending holds on it are declined `post_ended`, the
    stock it offered goes, and a post not yet due is left alone."""
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    ctx = worker_context(settings, pool, clock)
    region = settings.region
    async with street(redis, settings, clock) as (web, http), \
            feed_client(web.ws, *STREET) as client:
        soon = clock.now() + timedelta(minutes=10)
        held = {**offer(soon, "Noix"), "hold": {"quantity": 3, "minutes": 30}}
        due = [(await send_post(http, shop, body)).json()["id"]
               for body in (held, held, *(offer(soon, f"Offre {i}") for i in range(5)))]
        later = (await send_post(http, shop, offer(soon + timedelta(hours=1)))).json()["id"]
        for post_id in (*due, later):
            await client.wait_post(post_id)
        asked = await http.post(f"/api/v1/posts/{due[0]}/holds", json={"name": "Léa"})
        assert asked.status_code == 201, asked.text
        assert await redis.exists(keys.hold_stock(region, due[1]))  # offered, never asked
        clock.advance(10 * 60 + 1)
        await redis.script_flush()  # a restarted server: the sweep's pipeline gets NOSCRIPT
        assert await sweep_expired(ctx) == len(due)
        await wait_for(lambda: sorted(f["id"] for f in client.of_type("expired")) == sorted(due))
        assert await _feed_ids(http) == [later]
        assert await redis.zrange(keys.expiry_zset(region), 0, -1) == [later.encode()]
        held_now = await http.get(f"/api/v1/holds/{asked.json()['id']}",
                                  headers={"Authorization": f"Bearer {asked.json()['secret']}"})
        assert (held_now.json()["status"], held_now.json()["reason"]) == ("declined",
                                                                          "post_ended")
        for post_id in due[:2]:
            assert not await redis.exists(keys.hold_stock(region, post_id),
                                          keys.post_holds(region, post_id))
        assert await sweep_expired(ctx) == 0  # idempotent


async def test_real_arq_worker_expires_a_post_on_time(redis: Redis, settings: Settings,
                                                     pool: ArqRedis) -> None:
    """The sweep runs every second: a post ends within about a second of its end, with no
    job of its own in arq's queue (the enricher schedules nothing)."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings, SystemClock()), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as client:
        ends = datetime.now(UTC) + timedelta(seconds=1.5)
        post_id = (await send_post(http, shop, offer(ends))).json()["id"]
        await client.wait_post(post_id)
        assert await pool.zcard("sf:arq:queue") == 0
        worker = make_worker(pool, settings, SystemClock())
        running = asyncio.create_task(worker.async_run())
        try:
            await wait_for(lambda: bool(client.of_type("expired")), timeout=10)
            late = datetime.now(UTC) - ends
        finally:
            await worker.close()  # as streetfeed.runner stops it: close, then cancel
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        assert [f["id"] for f in client.of_type("expired")] == [post_id]
        assert late < timedelta(seconds=3), late  # a second's sweep, on a loaded machine
        assert await _feed_ids(http) == []


async def test_edit_replaces_the_card_and_moves_the_expiry(redis: Redis, settings: Settings,
                                                           pool: ArqRedis) -> None:
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    ctx = worker_context(settings, pool, clock)
    async with street(redis, settings, clock) as (web, http), \
            feed_client(web.ws, *STREET) as client:
        ends = clock.now() + timedelta(minutes=30)
        post_id = (await send_post(http, shop, offer(ends))).json()["id"]
        await client.wait_post(post_id)
        new_end = clock.now() + timedelta(hours=2)
        edit = await http.patch(f"/api/v1/shops/{shop.id}/posts/{post_id}", headers=auth(shop),
                                json={"title": "-40 % jusqu'à 20h",
                                      "ends_at": new_end.isoformat()})
        assert edit.status_code == 202 and edit.json() == {"id": post_id}
        await wait_for(lambda: len(client.posts()) == 2)
        first, second = client.posts()
        assert first["id"] == second["id"] == post_id
        assert second["title"] == "-40 % jusqu'à 20h"
        assert second["expires_at"] == new_end.astimezone(UTC).isoformat().replace("+00:00", "Z")
        assert second["posted_at"] == first["posted_at"] and second["updated_at"]
        feed = (await http.get("/api/v1/feed", params={"lat": STREET[0], "lon": STREET[1],
                                                        "radius_m": 500})).json()["posts"]
        assert [(p["id"], p["title"]) for p in feed] == [(post_id, "-40 % jusqu'à 20h")]
        # The old expiry time passes: the post stays (it now ends later).
        clock.advance(31 * 60)
        assert await expire_post(ctx, settings.region, post_id) is False
        assert await sweep_expired(ctx) == 0
        assert await _feed_ids(http) == [post_id]
        clock.advance(90 * 60)
        assert await sweep_expired(ctx) == 1
        await wait_for(lambda: bool(client.of_type("expired")))


async def test_edit_rejects_what_does_not_fit(redis: Redis, settings: Settings) -> None:
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    other = await add_shop(redis, settings, "Other", *STREET)
    async with street(redis, settings, clock) as (web, http), \
            feed_client(web.ws, *STREET) as client:
        post_id = (await send_post(http, shop, arrival("Fraises"))).json()["id"]
        await client.wait_post(post_id)
        url = f"/api/v1/shops/{shop.id}/posts/{post_id}"
        cases = [
            (auth(shop), {"ends_at": clock.now().isoformat()}, 422, "invalid_post"),
            (auth(shop), {"title": ""}, 422, "invalid_post"),
            (auth(shop), {"title": "<script>x</script>"}, 422, "markup_not_allowed"),
            (auth(shop), {}, 422, "empty_patch"),
            (auth(shop), {"colour": "red"}, 422, "invalid_post"),
            (auth(other), {"title": "mine now"}, 401, "invalid_token"),
        ]
        before = await redis.xlen(keys.in_stream(settings.region))
        for headers, body, status, code in cases:
            response = await http.patch(url, headers=headers, json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        # Another shop cannot edit it through its own URL either.
        for headers, body, status, code in [(auth(other), {"title": "mine"}, 404, "unknown_post")]:
            response = await http.patch(f"/api/v1/shops/{other.id}/posts/{post_id}",
                                        headers=headers, json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        assert await redis.xlen(keys.in_stream(settings.region)) == before


async def test_opening_hours_post_at_each_change_once(redis: Redis, settings: Settings,
                                                      pool: ArqRedis) -> None:
    clock = ManualClock(TUESDAY_0630)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    ctx = worker_context(settings, pool, clock)
    async with street(redis, settings, clock) as (web, http), \
            feed_client(web.ws, *STREET) as client:
        hours = {"timezone": "Europe/Paris", "weekly": {
            "tue": [{"open": "07:00", "close": "13:00"}, {"open": "15:30", "close": "19:30"}]}}
        put = await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth(shop), json=hours)
        assert put.status_code == 200
        assert put.json()["open_now"] is False
        assert put.json()["next_change"] == {"at": "2026-11-24T06:00:00Z", "open": True}
        assert await opening_changes(ctx) == 0  # first look: nothing happened yet
        clock.set(datetime(2026, 11, 24, 6, 0, 20, tzinfo=UTC))  # 07:00:20 local
        assert await opening_changes(ctx) == 1
        assert await opening_changes(ctx) == 0  # ran twice: one post
        post = await wait_for_first_post(client)
        assert post["kind"] == "opening_change" and post["auto"] is True
        assert post["status"] == "open_now"
        assert post["title"] == "Ouvert jusqu'à 13:00"
        assert post["until"] == "2026-11-24T12:00:00Z"
        profile = (await http.get(f"/api/v1/shops/{shop.id}")).json()
        assert profile["open_now"] is True
        # The scheduler is down from 07:01 to 13:40: on its return it posts what is true
        # now (closed until 15:30), not the whole history.
        clock.set(datetime(2026, 11, 24, 12, 40, tzinfo=UTC))
        assert await opening_changes(ctx) == 1
        assert await sweep_expired(ctx) == 1  # the "open until 13:00" post has ended
        await wait_for(lambda: len(client.posts()) == 2)
        closed = client.posts()[-1]
        assert (closed["status"], closed["title"]) == ("closed_now",
                                                       "Fermé, réouverture à 15:30")
        await wait_for(lambda: [f["id"] for f in client.of_type("expired")] == [post["id"]])


async def wait_for_first_post(client: Any) -> dict[str, Any]:
    await wait_for(lambda: bool(client.posts()))
    return client.posts()[0]  # type: ignore[no-any-return]


async def test_bad_hours_are_rejected(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        url = f"/api/v1/shops/{shop.id}/hours"
        for body, code in [({"timezone": "Mars/Olympus"}, "invalid_hours"),
                           ({"weekly": {"mon": [{"open": "25:00", "close": "26:00"}]}},
                            "invalid_hours"),
                           ({"weekly": {"monday": []}}, "invalid_hours"),
                           ({"weekly": {"mon": [{"open": "09:00", "close": "09:00"}]}},
                            "invalid_hours")]:
            response = await http.put(url, headers=auth(shop), json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (422, code)
        assert (await http.get(url)).json()["weekly"] == {}


async def test_token_rotation_stops_the_old_token_at_once(redis: Redis,
                                                          settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        rotated = await http.post(f"/api/v1/shops/{shop.id}/token", headers=auth(shop))
        assert rotated.status_code == 200
        new = ShopCreated(id=shop.id, token=rotated.json()["token"], name=shop.name,
                          region=shop.region)
        assert new.token != shop.token
        old = await send_post(http, shop, arrival())
        assert (old.status_code, old.json()["error"]["code"]) == (401, "invalid_token")
        assert (await send_post(http, new, arrival())).status_code == 202


async def test_disabled_shop_disappears(redis: Redis, settings: Settings) -> None:
    from services.shops import set_disabled
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    neighbour = await add_shop(redis, settings, "Voisin", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as client:
        ids = [(await send_post(http, shop, arrival(f"a{i}"))).json()["id"] for i in range(2)]
        kept = (await send_post(http, neighbour, arrival("voisin"))).json()["id"]
        await client.wait_post(kept)
        assert await set_disabled(redis, shop.id, True, SystemClock(), settings) == 2
        await wait_for(lambda: sorted(f["id"] for f in client.of_type("withdrawn")) == sorted(ids))
        assert await _feed_ids(http) == [kept]
        refused = await send_post(http, shop, arrival())
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "unknown_shop")
        assert (await http.get(f"/api/v1/shops/{shop.id}")).status_code == 404
        listed = (await http.get("/api/v1/shops")).json()["shops"]
        assert [s["id"] for s in listed] == [neighbour.id]


async def test_shop_update_refreshes_live_posts(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Ancien nom", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as client:
        post_id = (await send_post(http, shop, arrival())).json()["id"]
        await client.wait_post(post_id)
        response = await http.patch(f"/api/v1/shops/{shop.id}", headers=auth(shop),
                                    json={"name": "Nouveau nom"})
        assert response.status_code == 200 and response.json()["name"] == "Nouveau nom"
        await wait_for(lambda: len(client.posts()) == 2)
        assert client.posts()[-1]["shop"]["name"] == "Nouveau nom"
        bad = await http.patch(f"/api/v1/shops/{shop.id}", headers=auth(shop), json={"name": 5})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_shop")
        # Moving the shop is the operator's (issue 12: a shop moving itself located people).
        moved = await http.patch(f"/api/v1/shops/{shop.id}", headers=auth(shop),
                                 json={"lat": 45.0})
        assert (moved.status_code, moved.json()["error"]["code"]) == (403, "position_locked")


async def test_routine_cron_jobs_write_no_line_while_other_jobs_do(
        redis: Redis, settings: Settings, pool: ArqRedis) -> None:
    """The holds' expiry runs every 5 s: arq's start and success lines of the scheduled
    jobs are left out of the log (34,560 lines a day); other jobs' lines are kept."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    arq_log = logging.getLogger("arq.worker")
    quiet, keep, level = QuietRoutineJobs(), Keep(logging.INFO), arq_log.level
    arq_log.addFilter(quiet)
    arq_log.addHandler(keep)
    arq_log.setLevel(logging.INFO)
    try:
        # An expire_post job as an older enricher queued it: still run (and logged).
        await pool.enqueue_job("expire_post", settings.region, "p_0000000000000000",
                               _queue_name=keys.arq_queue(), _defer_until=datetime.now(UTC))
        # A burst worker runs the scheduled jobs marked to run at start-up, and the one
        # deferred job, then exits.
        worker = make_worker(pool, settings, SystemClock(), burst=True)
        await worker.main()
        await worker.close()
    finally:
        arq_log.removeFilter(quiet)
        arq_log.removeHandler(keep)
        arq_log.setLevel(level)
    assert worker.jobs_complete >= 4  # the expiry and the start-up cron jobs ran
    lines = [r.getMessage() for r in seen]
    assert any("expire_post(" in line and "→" in line for line in lines), lines
    assert any("expire_post" in line and "←" in line for line in lines), lines
    assert not [line for line in lines if "cron:" in line and ("→" in line or "←" in line)]
