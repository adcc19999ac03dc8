""""Hold it for me" from outside (DESIGN.md section 9, issue 17): a real uvicorn and
enricher, a real Redis-compatible server, real WebSocket clients.

A post offers units to hold; a passer-by takes one with a first name and reads, then
cancels it with its secret; the shop lists, accepts, declines and marks holds collected;
`left` follows on every socket in range; the last unit cannot be held twice under
concurrent requests; a withdrawn post declines what was pending; time ends the rest
(the scheduler's job with a controlled clock); bad input is a clear 4xx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import segno
from arq.connections import ArqRedis
from redis.asyncio import Redis

from rules.clock import ManualClock
from runtime.settings import Settings
from schemas.limits import HOLD_CODE_ALPHABET
from services.holds import Holds
from storage import keys
from storage.ratelimit import RateLimiter
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    bearer,
    enricher,
    feed_client,
    flash,
    live_post,
    send_post,
    wait_for,
    web_server,
)
from tests.test_console_ws import console_socket
from workers.scheduler import expire_holds, make_worker, worker_context

STREET = (44.8370, -0.5735)


async def hold(http: httpx.AsyncClient, post_id: str, name: str = "Léa") -> httpx.Response:
    return await http.post(f"/api/v1/posts/{post_id}/holds", json={"name": name})


def left_seen(client: Any, post_id: str) -> int | None:
    versions = [p for p in client.posts() if p["id"] == post_id]
    return versions[-1]["hold"]["left"] if versions and versions[-1].get("hold") else None


async def test_a_hold_from_asking_to_collecting(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        post_id = await live_post(http, shop, redis,
                                  arrival("Fraises de Plougastel",
                                          hold={"quantity": 2, "minutes": 30}))
        delivered = await street.wait_post(post_id)
        assert delivered["hold"] == {"left": 2, "minutes": 30}

        before = datetime.now(UTC)
        taken = await hold(http, post_id, " Léa ")
        assert taken.status_code == 201, taken.text
        created = taken.json()
        assert set(created) == {"id", "secret", "code", "status", "expires_at"}
        assert created["status"] == "pending"
        assert len(created["code"]) == 4 and set(created["code"]) <= set(HOLD_CODE_ALPHABET)
        expires = datetime.fromisoformat(created["expires_at"])
        assert before + timedelta(minutes=30) <= expires <= datetime.now(UTC) + timedelta(
            minutes=30)
        # Every socket in range sees one unit fewer.
        await wait_for(lambda: left_seen(street, post_id) == 1, message="left 1")
        assert street.posts()[-1].get("updated_at") is None  # not an edit of the shop's

        # The passer-by reads it with its secret only.
        hold_url = f"/api/v1/holds/{created['id']}"
        seen = (await http.get(hold_url, headers=bearer(created["secret"]))).json()
        assert seen["status"] == "pending" and seen["name"] == "Léa"
        assert seen["code"] == created["code"]
        assert seen["post"]["id"] == post_id and seen["post"]["title"] == "Fraises de Plougastel"
        assert seen["shop"]["id"] == shop.id and seen["shop"]["name"] == "Primeur"
        assert "secret_hash" not in seen and "address" not in seen
        assert (await http.get(hold_url)).json()["error"]["code"] == "missing_token"
        wrong = await http.get(hold_url, headers=bearer("not-it"))
        assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "unknown_hold"

        # The shop lists and accepts it.
        listed = (await http.get(f"/api/v1/shops/{shop.id}/holds", headers=auth(shop))).json()
        assert [(h["id"], h["status"], h["code"], h["name"]) for h in listed["holds"]] == [
            (created["id"], "pending", created["code"], "Léa")]
        assert (await http.get(f"/api/v1/shops/{shop.id}/holds")).status_code == 401
        actions = f"/api/v1/shops/{shop.id}/holds/{created['id']}"
        accepted = await http.post(f"{actions}/accept", headers=auth(shop))
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
        again = await http.post(f"{actions}/accept", headers=auth(shop))
        assert again.status_code == 409, again.text

        # The second unit, then none.
        second = (await hold(http, post_id, "Marc")).json()
        await wait_for(lambda: left_seen(street, post_id) == 0, message="left 0")
        sold = await hold(http, post_id, "Zoé")
        assert sold.status_code == 409 and sold.json()["error"]["code"] == "sold_out"

        # Cancelled by its passer-by: the unit comes back.
        cancelled = await http.delete(f"/api/v1/holds/{second['id']}",
                                      headers=bearer(second["secret"]))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        await wait_for(lambda: left_seen(street, post_id) == 1, message="left 1 again")
        ended = await http.delete(f"/api/v1/holds/{second['id']}",
                                  headers=bearer(second["secret"]))
        assert ended.status_code == 409 and ended.json()["error"]["code"] == "hold_ended"

        # Collected at the till: the unit is sold, not given back.
        frames = len(street.posts())
        collected = await http.post(f"{actions}/collected", headers=auth(shop))
        assert collected.status_code == 200 and collected.json()["status"] == "collected"
        assert (await http.get(hold_url, headers=bearer(created["secret"]))).json()[
            "status"] == "collected"
        listed = (await http.get(f"/api/v1/shops/{shop.id}/holds", headers=auth(shop))).json()
        assert listed == {"holds": []}
        third = await hold(http, post_id, "Zoé")
        assert third.status_code == 201
        await wait_for(lambda: left_seen(street, post_id) == 0, message="left 0 again")
        assert len(street.posts()) == frames + 1  # collecting sent nothing to the street

        # Another shop cannot answer it.
        other = await add_shop(redis, settings, "Voisin", *STREET)
        foreign = await http.post(f"/api/v1/shops/{other.id}/holds/{third.json()['id']}"
                                  "/decline", headers=auth(other))
        assert foreign.status_code == 404


async def test_the_last_unit_is_held_once_under_concurrency(
        redis: Redis, settings: Settings) -> None:
    settings = dataclasses.replace(settings, open_holds_per_address=100,
                                   holds_per_address_per_hour=1000)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, flash("Dernier melon", hold={
            "quantity": 1, "minutes": 15}))
        answers = await asyncio.gather(*(hold(http, post_id, f"Client {chr(65 + i)}")
                                         for i in range(12)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] + [409] * 11, [a.text for a in answers]
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
            "sold_out"}
        stock = await redis.hgetall(keys.hold_stock("main", post_id))
        assert stock[b"taken"] == b"1"


async def test_a_withdrawn_post_declines_its_pending_holds(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, arrival("Cèpes", hold={
            "quantity": 5, "minutes": 60}))
        pending = (await hold(http, post_id, "Léa")).json()
        kept = (await hold(http, post_id, "Marc")).json()
        assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{kept['id']}/accept",
                                headers=auth(shop))).status_code == 200
        gone = await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                 headers=auth(shop))
        assert gone.status_code == 200
        read = await http.get(f"/api/v1/holds/{pending['id']}", headers=bearer(pending["secret"]))
        assert read.json()["status"] == "declined" and read.json()["ended_at"] is not None
        # What the shop accepted is still put aside for its customer.
        read = await http.get(f"/api/v1/holds/{kept['id']}", headers=bearer(kept["secret"]))
        assert read.json()["status"] == "accepted"
        listed = (await http.get(f"/api/v1/shops/{shop.id}/holds", headers=auth(shop))).json()
        assert [h["id"] for h in listed["holds"]] == [kept["id"]]
        late = await hold(http, post_id, "Zoé")
        assert late.status_code == 410 and late.json()["error"]["code"] == "post_gone"


async def test_time_ends_open_holds_and_gives_units_back(
        redis: Redis, settings: Settings) -> None:
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    holds = Holds(redis, settings, clock, settings.moderation_policy(),
                  RateLimiter(redis, settings.secret))
    async with web_server(settings, clock=clock) as web, enricher(redis, settings, clock), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        post_id = await live_post(http, shop, redis, arrival("Asperges", hold={
            "quantity": 2, "minutes": 15}))
        first = (await hold(http, post_id, "Léa")).json()
        clock.advance(10 * 60)
        second = (await hold(http, post_id, "Marc")).json()
        await http.post(f"/api/v1/shops/{shop.id}/holds/{first['id']}/accept",
                        headers=auth(shop))
        await wait_for(lambda: left_seen(street, post_id) == 0, message="left 0")
        assert await holds.expire_due("main") == 0
        clock.advance(5 * 60)  # the first's 15 minutes are up, not the second's
        assert await holds.expire_due("main") == 1
        assert await holds.expire_due("main") == 0  # idempotent
        read = await http.get(f"/api/v1/holds/{first['id']}", headers=bearer(first["secret"]))
        # Put aside and not collected: nothing more to say.
        assert (read.json()["status"], read.json()["reason"]) == ("expired", None)
        await wait_for(lambda: left_seen(street, post_id) == 1, message="a unit back")
        # Answering one whose time is up expires it, whatever the sweep did yet.
        clock.advance(11 * 60)
        late = await http.post(f"/api/v1/shops/{shop.id}/holds/{second['id']}/accept",
                               headers=auth(shop))
        assert late.status_code == 409 and late.json()["error"]["code"] == "hold_ended"
        read = await http.get(f"/api/v1/holds/{second['id']}", headers=bearer(second["secret"]))
        # Never answered: its passer-by is told the shop did not answer in time.
        assert (read.json()["status"], read.json()["reason"]) == ("expired", "no_answer")


async def test_the_scheduler_expires_holds_and_catches_up_after_downtime(
        redis: Redis, settings: Settings) -> None:
    """A real arq worker (burst mode) runs the scheduler's `expire_holds` on a controlled
    clock: holds that fell due while no scheduler ran end at its first run, the units come
    back on every socket, and running it again changes nothing."""
    clock = ManualClock()
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings, clock=clock) as web, enricher(redis, settings, clock), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        post_id = await live_post(http, shop, redis, arrival("Asperges", hold={
            "quantity": 3, "minutes": 15}))
        kept, unanswered = [(await hold(http, post_id, n)).json() for n in ("Léa", "Marc")]
        await http.post(f"/api/v1/shops/{shop.id}/holds/{kept['id']}/accept",
                        headers=auth(shop))
        await wait_for(lambda: left_seen(street, post_id) == 1, message="left 1")
        context = worker_context(settings, redis, clock)
        assert await expire_holds(context) == 0  # not due yet
        clock.advance(45 * 60)  # the scheduler was down when they fell due
        pool = ArqRedis.from_url(settings.redis_url)  # type: ignore[arg-type]
        try:
            worker = make_worker(pool, settings, clock, data=redis, burst=True)
            await worker.main()
            await worker.close()
        finally:
            await pool.aclose()
        for held, reason in ((kept, None), (unanswered, "no_answer")):
            seen = (await http.get(f"/api/v1/holds/{held['id']}",
                                   headers=bearer(held["secret"]))).json()
            assert (seen["status"], seen["reason"]) == ("expired", reason)
        await wait_for(lambda: left_seen(street, post_id) == 3, message="units back")
        assert await expire_holds(context) == 0  # idempotent
        assert await redis.zcard(keys.holds_due("main")) == 0


async def test_bad_holds_are_refused_clearly(redis: Redis, settings: Settings) -> None:
    settings = dataclasses.replace(settings, open_holds_per_address=2)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        plain = await live_post(http, shop, redis, arrival("Pain"))
        held = await live_post(http, shop, redis, arrival("Brioche", hold={
            "quantity": 10, "minutes": 20}))
        cases: list[tuple[str, Any, int, str]] = [
            (plain, {"name": "Léa"}, 409, "not_holdable"),
            ("p_aaaaaaaaaaaaaaaa", {"name": "Léa"}, 410, "post_gone"),
            ("P_AAAA';--", {"name": "Léa"}, 410, "post_gone"),
            (held, {"name": ""}, 422, "invalid_hold"),
            (held, {"name": "x" * 41}, 422, "invalid_hold"),
            (held, {"name": "Léa", "phone": "0600"}, 422, "invalid_hold"),
            (held, {"name": "<b>Léa</b>"}, 422, "markup_not_allowed"),
            (held, {"name": "Léa 0612345678"}, 422, "invalid_name"),
            (held, {"name": "Léa\nMarc"}, 422, "control_characters"),
        ]
        for post_id, body, status, code in cases:
            answer = await http.post(f"/api/v1/posts/{post_id}/holds", json=body)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (
                body, answer.text)
        as_json = {"Content-Type": "application/json"}
        broken = await http.post(f"/api/v1/posts/{held}/holds", content=b"{", headers=as_json)
        assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"
        twice = await http.post(f"/api/v1/posts/{held}/holds",
                                content=b'{"name":"Lea","name":"Marc"}', headers=as_json)
        assert twice.status_code == 400 and twice.json()["error"]["code"] == "duplicate_key"
        # Another site's page cannot make its visitors' browsers ask (no preflight for a
        # text/plain or form body; a cold attacker's): JSON only, not from another origin.
        for headers in ({"Content-Type": "text/plain;charset=UTF-8"},
                        {"Content-Type": "application/x-www-form-urlencoded"},
                        {"Content-Type": "application/json", "Origin": "https://evil.example",
                         "Sec-Fetch-Site": "cross-site"}):
            forged = await http.post(f"/api/v1/posts/{held}/holds", content=b'{"name":"Ann"}',
                                     headers=headers)
            assert forged.status_code in (403, 415), (headers, forged.text)
            assert forged.json()["error"]["code"] in ("cross_origin", "unsupported_media_type")
        # A post offering holds is refused as such only by its own rules.
        refused = await send_post(http, shop, arrival("Tarte", hold={"quantity": 0,
                                                                     "minutes": 20}))
        assert refused.status_code == 422
        refused = await send_post(http, shop, arrival("Tarte", hold={"quantity": 1,
                                                                     "minutes": 241}))
        assert refused.status_code == 422
        # Open holds per address: 2 here, then 429 until one ends.
        ok = [(await hold(http, held, n)).json() for n in ("Léa", "Marc")]
        full = await hold(http, held, "Zoé")
        assert full.status_code == 429 and full.json()["error"]["code"] == "too_many_holds"
        await http.delete(f"/api/v1/holds/{ok[0]['id']}", headers=bearer(ok[0]["secret"]))
        assert (await hold(http, held, "Zoé")).status_code == 201
        # Nothing about the asker's address is kept in clear.
        for key in await redis.keys("sf:*hold*"):
            for value in (await redis.hgetall(key)).values() if await redis.type(key) == b"hash" \
                    else []:
                assert b"127.0.0.1" not in value


async def test_a_shop_turns_holds_off(redis: Redis, settings: Settings) -> None:
    # Profile changes republish at most once a minute by default: not to wait for it here.
    settings = dataclasses.replace(settings, profile_republish_interval_s=0.2)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        post_id = await live_post(http, shop, redis, arrival("Cerises", hold={
            "quantity": 3, "minutes": 30}))
        await street.wait_post(post_id)
        off = await http.patch(f"/api/v1/shops/{shop.id}", json={"holds": False},
                               headers=auth(shop))
        assert off.status_code == 200, off.text
        # Its posts are published again without the offer, and none is taken.
        await wait_for(lambda: street.posts()[-1]["id"] == post_id
                       and street.posts()[-1].get("hold") is None, message="offer gone")
        refused = await hold(http, post_id)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_holdable"
        on = await http.patch(f"/api/v1/shops/{shop.id}", json={"holds": True},
                              headers=auth(shop))
        assert on.status_code == 200
        await wait_for(lambda: (street.posts()[-1].get("hold") or {}).get("left") == 3,
                       message="offer back")
        assert (await hold(http, post_id)).status_code == 201


async def test_the_console_socket_is_told_of_every_step(
        redis: Redis, settings: Settings) -> None:
    """New holds reach the shop's console as they are asked (pushed, no request), and
    each answer, cancellation and the post's withdrawal with them."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            console_socket(web.ws, token=shop, origin=web.http) as console:
        first = await console.wait("holds")
        assert first == {"type": "holds", "holds": [], "held_today": 0}
        post_id = await live_post(http, shop, redis, arrival("Girolles", hold={
            "quantity": 3, "minutes": 45}))
        asked = (await hold(http, post_id, "Léa")).json()

        def latest() -> dict[str, Any]:
            return console.of_type("holds")[-1]

        # Each push is the state read after a step (a read under way when the hold was
        # taken may push a moment in between first): wait for the one that has it.
        await wait_for(lambda: bool(latest()["holds"]), message="the hold pushed")
        pushed = latest()
        assert [(h["id"], h["status"], h["code"], h["name"], h["post"]["title"])
                for h in pushed["holds"]] == [
            (asked["id"], "pending", asked["code"], "Léa", "Girolles")]
        assert pushed["held_today"] == 0  # asked, not yet put aside
        await http.post(f"/api/v1/shops/{shop.id}/holds/{asked['id']}/accept",
                        headers=auth(shop))
        await wait_for(lambda: [h["status"] for h in latest()["holds"]] == ["accepted"],
                       message="accepted pushed")
        assert latest()["held_today"] == 1  # counted in the accept's own step
        await http.delete(f"/api/v1/holds/{asked['id']}", headers=bearer(asked["secret"]))
        await wait_for(lambda: latest()["holds"] == [], message="cancelled pushed")
        assert latest()["held_today"] == 1


async def test_an_edit_changes_or_stops_the_offer_and_keeps_what_is_held(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as street:
        post_id = await live_post(http, shop, redis, arrival("Figues", hold={
            "quantity": 3, "minutes": 30}))
        taken = [(await hold(http, post_id, name)).json() for name in ("Léa", "Marc")]
        await wait_for(lambda: left_seen(street, post_id) == 1, message="left 1")
        edit = f"/api/v1/shops/{shop.id}/posts/{post_id}"
        # Fewer than are held: none left, and the two holds stand.
        lowered = await http.patch(edit, json={"hold": {"quantity": 1, "minutes": 60}},
                                   headers=auth(shop))
        assert lowered.status_code == 202, lowered.text
        await wait_for(lambda: street.posts()[-1].get("hold") == {"left": 0, "minutes": 60},
                       message="left 0 after the edit")
        assert (await hold(http, post_id, "Zoé")).json()["error"]["code"] == "sold_out"
        # An edit of the title alone keeps the offer.
        await http.patch(edit, json={"title": "Figues de Solliès"}, headers=auth(shop))
        await wait_for(lambda: street.posts()[-1]["title"] == "Figues de Solliès",
                       message="title edited")
        assert street.posts()[-1]["hold"] == {"left": 0, "minutes": 60}
        # Stopped: the post offers none, what was held is still held.
        stopped = await http.patch(edit, json={"hold": None}, headers=auth(shop))
        assert stopped.status_code == 202
        await wait_for(lambda: street.posts()[-1].get("hold") is None, message="offer gone")
        assert (await hold(http, post_id, "Zoé")).json()["error"]["code"] == "not_holdable"
        for held in taken:
            read = await http.get(f"/api/v1/holds/{held['id']}", headers=bearer(held["secret"]))
            assert read.json()["status"] == "pending"
        # Offered again: the count goes on from what is held.
        await http.patch(edit, json={"hold": {"quantity": 5, "minutes": 30}}, headers=auth(shop))
        await wait_for(lambda: street.posts()[-1].get("hold") == {"left": 3, "minutes": 30},
                       message="offer back, 2 held")


async def test_holds_per_address_per_hour(redis: Redis, settings: Settings) -> None:
    settings = dataclasses.replace(settings, holds_per_address_per_hour=2,
                                   open_holds_per_address=10)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, arrival("Noix", hold={
            "quantity": 10, "minutes": 30}))
        for name in ("Léa", "Marc"):
            held = (await hold(http, post_id, name)).json()
            await http.delete(f"/api/v1/holds/{held['id']}", headers=bearer(held["secret"]))
        third = await hold(http, post_id, "Zoé")
        assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"
        assert "retry-after" in {k.lower() for k in third.headers}


async def test_a_code_s_qr_for_the_till_s_scanner(redis: Redis, settings: Settings) -> None:
    """`GET /api/v1/holds/qr/{code}.svg`: public, the 4 characters alone (no id, no secret),
    cached for good; anything that is not a code is 404."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await live_post(http, shop, redis, arrival("Figues", hold={
            "quantity": 1, "minutes": 30}))
        code = (await hold(http, post_id)).json()["code"]
        answer = await http.get(f"/api/v1/holds/qr/{code}.svg")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/svg+xml"
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        expected = io.BytesIO()
        segno.make(code, error="m", micro=False).save(
            expected, kind="svg", scale=8, border=2, dark="#000", light="#fff", xmldecl=False)
        assert answer.content == expected.getvalue()
        assert answer.content.startswith(b"<svg")
        for bad in ("ABC", "ACDEF", "acde", "AB0O", "A%2FCD", "ÉCDE"):
            refused = await http.get(f"/api/v1/holds/qr/{bad}.svg")
            assert refused.status_code == 404, bad
            assert refused.json()["error"]["code"] == "not_found", bad
        # The hold routes are not shadowed, nor do they shadow it.
        assert (await http.get("/api/v1/holds/qr")).json()["error"]["code"] in {
            "unknown_hold", "not_found"}
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert "/api/v1/holds/qr/{code}.svg" in paths
