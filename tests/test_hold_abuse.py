""""Hold it for me" against a cold attacker (issue 17, second round): per-address limits
that one phone cannot rotate out of, limits that count what was taken and hold across an
hour's edge and midnight, first names that carry no contact details, a "held today" that
asking cannot inflate, a declined hold that says why, and the take's answer and refresh
whatever happens after its script.

Pure rules first, tested directly; then the attacks as an attacker makes them: a real
uvicorn and enricher, a real Redis-compatible server, many client addresses through
`X-Forwarded-For` from the trusted proxy (127.0.0.1, the default), time moved with a
controlled clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from rules.addresses import counted_address
from rules.clock import ManualClock
from rules.holds import ACTIONS, END_REASONS, HELD_FROM
from rules.moderation import Policy, check_hold_name
from runtime.settings import Settings
from schemas.holds import HoldPostRef, HoldRecord, HoldShop
from schemas.shops import ShopCreated
from storage import keys
from storage.holds import AddressLimits, Changed, HoldStore, Taken
from storage.ratelimit import DAY_S, RateLimiter
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    bearer,
    enricher,
    live_post,
    web_server,
)

STREET = (44.8370, -0.5735)


async def held_post(http: httpx.AsyncClient, shop: ShopCreated, redis: Redis,
                    quantity: int = 10, minutes: int = 30, title: str = "Noix") -> str:
    """A live new arrival offering `quantity` units to hold."""
    return await live_post(http, shop, redis, arrival(title, hold={"quantity": quantity,
                                                                   "minutes": minutes}))


async def hold(http: httpx.AsyncClient, post_id: str, client: str = "198.51.100.1",
               name: str = "Léa") -> httpx.Response:
    """A hold asked from `client`, as the trusted proxy (127.0.0.1) forwards it."""
    return await http.post(f"/api/v1/posts/{post_id}/holds", json={"name": name},
                           headers={"X-Forwarded-For": client})


def status_and_code(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"] if answer.status_code >= 400 \
        else ""


# --- The rules ----------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "counted"), [
    ("2001:db8:1:2::a", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:0:0:0:C", "2001:db8:1:2::/64"),  # upper case, uncompressed
    ("2001:0db8:0001:0002::1", "2001:db8:1:2::/64"),  # leading zeros
    ("[2001:db8:1:2::9]", "2001:db8:1:2::/64"),
    ("[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::a", "2001:db8:1:3::/64"),  # the next /64 is another subscriber
    ("fe80::1%eth0", "fe80::/64"),  # a zone id is no part of the address
    ("fe80::1ff:fe23:4567:890a%3", "fe80::/64"),
    ("::1", "::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4-mapped: the IPv4 client it is
    ("::FFFF:c633:6407", "198.51.100.7"),
    ("198.51.100.7", "198.51.100.7"),
    (" 198.51.100.7 ", "198.51.100.7"),
    ("127.0.0.1", "127.0.0.1"),
    # Not an address: counted as given, never lumped with another.
    ("testclient", "testclient"),
    ("", ""),
    ("2001:db8::g", "2001:db8::g"),
    ("010.0.0.1", "010.0.0.1"),
    ("1.2.3.4.5", "1.2.3.4.5"),
    ("[::1", "[::1"),
])
def test_an_address_is_counted_under_its_ipv6_64(address: str, counted: str) -> None:
    assert counted_address(address) == counted


async def test_the_limiter_names_a_64_once_and_knows_yesterday_s_name(
        redis: Redis, settings: Settings) -> None:
    limiter = RateLimiter(redis, settings.secret)
    now = 1_780_000_000.0
    one = limiter.address_hash("2001:db8:1:2::a", now)
    assert limiter.address_hash("2001:db8:1:2:ffff::1", now) == one
    assert limiter.address_hash("2001:db8:1:3::a", now) != one
    assert limiter.address_hash("::ffff:198.51.100.7", now) == limiter.address_hash(
        "198.51.100.7", now)
    today, yesterday = limiter.address_hashes("2001:db8:1:2::b", now)
    assert today == one
    assert yesterday == limiter.address_hash("2001:db8:1:2::a", now - DAY_S) != today
    # Asking for yesterday's name does not unlearn today's key, nor changes it.
    assert limiter.address_hash("2001:db8:1:2::a", now) == one
    # Nothing of the address or its /64 in the name.
    assert "2001" not in one and "db8" not in one and len(one) == 24


ACCEPTED_NAMES = ["Léa", "Jean-Pierre", "Zoë", "O'Brien", "O’Brien", "Anne Marie", "Nguyễn",
                  "Nguye\u0302\u0303n", "李", "王一博", "Мария", "María José", "D'Artagnan",
                  "Jr.", "Marc Jr.", "J.P.", "St. Clair", "Ōsaka Ren", "محمد", "Chloé",
                  "Gal·la", "Marcel·lí", "J. De La Cruz", "Marie-Ève", "マリー・アン",
                  "ג׳ורג׳", "Pierre Orange", "Marie à Paris", "Sarah Point"]
REFUSED_NAMES = {
    "invalid_name": ["Léa 0612345678", "Léa ０６１２", "Léa ٠٦١٢", "Louis Ⅻ", "Louis XIV²",
                     "Léa ½", "①", "marie@gmail", "marie＠gmail", "marie﹫gmail",
                     "marie (at) gmail", "marie [at] gmail", "marie{AT}gmail", "marie at gmail.com",
                     "marie at gmail dot com", "marie(at)gmail(dot)com", "marie.dupont.fr",
                     "gmail.com", "Léa gmail.com", "Léa ＧＭＡＩＬ．ＣＯＭ", "lea.fr",
                     # A second cold attacker's: French words, spaced dots, brackets, blanks.
                     "marie arobase gmail point com", "marie chez gmail point com",
                     "marie gmail .com", "marie gmail . fr", "marie gmail. com",
                     "marie·gmail·com", "marie gmail,com", "marie (a) gmail", "marie[a]gmail",
                     "marie at gmail", "Marie AT Orange", "lea hotmail", "léa point fr",
                     "Marie" + "\u2800" * 30 + "Paul", "Marie\ufffc", "Marie\ufffd",
                     "Marie\U0001d159", "Léa ♥", "Léa :)", "Léa (Paris)", "Léa_Paul"],
    "control_characters": ["Ma\u200brie", "Ma\u200crie", "Ma\u200drie", "Ma\u00adrie",
                           "Marie\u2060", "\ufeffMarie", "Marie\u180e", "Léa\ufe0f",
                           "Léa \u3164", "Léa\u034f"],
}


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_real_first_names_are_accepted(name: str) -> None:
    assert check_hold_name(name, Policy()) is None


@pytest.mark.parametrize(("name", "code"), [(n, c) for c, names in REFUSED_NAMES.items()
                                            for n in names])
def test_contact_details_and_invisible_characters_are_refused(name: str, code: str) -> None:
    rejection = check_hold_name(name, Policy())
    assert rejection is not None and rejection.code == code, (name, rejection)


def test_held_today_counts_a_hold_once_when_the_shop_puts_it_aside() -> None:
    counted = {(action, found) for action, (applies_to, _) in ACTIONS.items()
               for found in applies_to if found in HELD_FROM.get(action, ())}
    assert counted == {("accept", "pending"), ("collected", "pending")}
    # Each of them a step the action may take (the script counts only a change it makes).
    assert all(set(froms) <= set(ACTIONS[a][0]) for a, froms in HELD_FROM.items())
    assert {a: r for a, (r, _) in END_REASONS.items()} == {
        "decline": "shop", "post_ended": "post_ended", "shop_disabled": "shop_disabled",
        "expire": "no_answer"}
    assert {ACTIONS[a][1] for a in END_REASONS} == {"declined", "expired"}
    # Each said only from statuses its action applies to.
    assert all(set(froms) <= set(ACTIONS[a][0]) for a, (_, froms) in END_REASONS.items())


# --- Per-address limits, from outside ----------------------------------------------------

async def test_one_ipv6_64_shares_the_hold_allowance(redis: Redis, settings: Settings) -> None:
    """An ISP hands a phone or a household a /64: rotating through it (2^64 addresses) did
    drain a shop's units. The /64 is one client; the next /64 is another."""
    settings = settings.with_(holds_per_address_per_hour=2, open_holds_per_address=10)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis, quantity=20)
        answers = [await hold(http, post_id, client) for client in (
            "2001:db8:1:2::a", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:DB8:1:2::c")]
        assert [status_and_code(a) for a in answers] == [(201, ""), (201, ""),
                                                         (429, "rate_limited")]
        assert (await hold(http, post_id, "2001:db8:1:3::a")).status_code == 201
        # An IPv4 client and its IPv4-mapped form are one client too.
        answers = [await hold(http, post_id, client) for client in (
            "198.51.100.7", "::ffff:198.51.100.7", "198.51.100.7")]
        assert [a.status_code for a in answers] == [201, 201, 429]
    # Open holds per address: the same /64 rule (2 open from one /64, then too many).
    settings_open = settings.with_(holds_per_address_per_hour=100, open_holds_per_address=2)
    async with web_server(settings_open) as web, enricher(redis, settings_open), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis, quantity=20, title="Amandes")
        answers = [await hold(http, post_id, f"2001:db8:9:9::{n}") for n in (1, 2, 3)]
        assert [status_and_code(a) for a in answers] == [(201, ""), (201, ""),
                                                         (429, "too_many_holds")]
        assert (await hold(http, post_id, "2001:db8:9:a::1")).status_code == 201


async def test_the_hourly_limit_counts_holds_taken_over_a_sliding_hour(
        redis: Redis, settings: Settings) -> None:
    """A sold-out or withdrawn post costs nothing of the allowance; an hour is any hour,
    not a window an attacker doubles across its edge."""
    clock = ManualClock()
    settings = settings.with_(holds_per_address_per_hour=2, open_holds_per_address=10)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    me = "203.0.113.9"
    async with web_server(settings, clock=clock) as web, enricher(redis, settings, clock), \
            httpx.AsyncClient(base_url=web.http) as http:
        sold = await held_post(http, shop, redis, quantity=1, title="Dernier melon")
        assert (await hold(http, sold, "198.51.100.50")).status_code == 201
        gone = await held_post(http, shop, redis, title="Cèpes")
        assert (await http.delete(f"/api/v1/shops/{shop.id}/posts/{gone}",
                                  headers=auth(shop))).status_code == 200
        for _ in range(4):
            assert status_and_code(await hold(http, sold, me)) == (409, "sold_out")
            assert status_and_code(await hold(http, gone, me)) == (410, "post_gone")
        post_id = await held_post(http, shop, redis)

        async def take() -> httpx.Response:
            return await hold(http, post_id, me)

        assert (await take()).status_code == 201  # at t0
        clock.advance(40 * 60)
        assert (await take()).status_code == 201  # at t0 + 40 min
        clock.advance(10 * 60)
        refused = await take()  # t0 + 50 min: two in the last hour
        assert status_and_code(refused) == (429, "rate_limited")
        # Retry when the first leaves the hour: at t0 + 60 min, 600 s from now.
        assert 599 <= int(refused.headers["retry-after"]) <= 601, refused.headers
        clock.advance(11 * 60)  # t0 + 61 min: the first is out, the second still in
        assert (await take()).status_code == 201
        refused = await take()
        assert status_and_code(refused) == (429, "rate_limited")
        # The second leaves at t0 + 100 min: 39 min from now.
        assert 39 * 60 - 1 <= int(refused.headers["retry-after"]) <= 39 * 60 + 1
        # Another address is not concerned.
        assert (await hold(http, post_id, "203.0.113.10")).status_code == 201


async def test_parallel_requests_cannot_pass_the_hourly_limit(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(holds_per_address_per_hour=3, open_holds_per_address=100)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis, quantity=50)
        answers = await asyncio.gather(*(hold(http, post_id, "2001:db8:77:1::" + hex(n)[2:],
                                              f"Client {chr(65 + n)}") for n in range(12)))
        assert sorted(status_and_code(a) for a in answers) == (
            [(201, "")] * 3 + [(429, "rate_limited")] * 9), [a.text for a in answers]
        assert (await redis.hget(keys.hold_stock("main", post_id), "taken")) == b"3"


async def test_failed_attempts_are_bounded_by_the_request_limit(
        redis: Redis, settings: Settings) -> None:
    """What the hourly limit no longer counts (a sold-out post asked again and again) the
    API's requests per address per minute still bound."""
    settings = settings.with_(address_requests_per_minute=5)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        sold = await held_post(http, shop, redis, quantity=1)
        assert (await hold(http, sold, "198.51.100.50")).status_code == 201
        answers = [await hold(http, sold, "2001:db8:5:5::" + str(n)) for n in range(6)]
        assert [status_and_code(a) for a in answers] == [(409, "sold_out")] * 5 + [
            (429, "rate_limited")]


def _before_midnight() -> datetime:
    """A minute before the next UTC midnight, when the address's daily name changes."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1, minutes=-1)


@pytest.mark.parametrize("limit", ["open", "hourly"])
async def test_the_per_address_limits_hold_across_midnight(
        redis: Redis, settings: Settings, limit: str) -> None:
    """At midnight an address is counted under a new name: yesterday's open holds and
    takes still count, or a fresh allowance came with the new day."""
    clock = ManualClock(_before_midnight())
    settings = (settings.with_(open_holds_per_address=2, holds_per_address_per_hour=100)
                if limit == "open" else
                settings.with_(open_holds_per_address=100, holds_per_address_per_hour=2))
    code = "too_many_holds" if limit == "open" else "rate_limited"
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings, clock=clock) as web, enricher(redis, settings, clock), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis, minutes=120)
        taken = [(await hold(http, post_id, "2001:db8:4:4::1")).json() for _ in range(2)]
        assert all("secret" in t for t in taken), taken
        assert status_and_code(await hold(http, post_id, "2001:db8:4:4::2")) == (429, code)
        clock.advance(2 * 60)  # past midnight, UTC
        assert status_and_code(await hold(http, post_id, "2001:db8:4:4::3")) == (429, code)
        if limit == "open":  # one of yesterday's ends: its slot is free
            await http.delete(f"/api/v1/holds/{taken[0]['id']}",
                              headers=bearer(taken[0]["secret"]))
        else:
            clock.advance(60 * 60)
        assert (await hold(http, post_id, "2001:db8:4:4::4")).status_code == 201


# --- What held today counts, and why a hold was declined ---------------------------------

async def test_held_today_counts_what_the_shop_put_aside(
        redis: Redis, settings: Settings) -> None:
    """Asking, then cancelling, or asking what the shop declines, counts nothing (anyone
    could inflate a shop's screen); an accept counts once, as does a hold collected at
    the till straight from pending."""
    settings = settings.with_(open_holds_per_address=100, holds_per_address_per_hour=100)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis, quantity=20)

        async def held_today() -> int:
            profile = (await http.get(f"/api/v1/shops/{shop.id}")).json()
            return int(profile["held_today"])

        def act(hold_id: str, action: str) -> Any:
            return http.post(f"/api/v1/shops/{shop.id}/holds/{hold_id}/{action}",
                             headers=auth(shop))

        asked = [(await hold(http, post_id, name=n)).json() for n in ("Ann", "Bob", "Cyd",
                                                                    "Dan", "Eve")]
        assert await held_today() == 0
        await http.delete(f"/api/v1/holds/{asked[0]['id']}", headers=bearer(asked[0]["secret"]))
        assert (await act(asked[1]["id"], "decline")).status_code == 200
        assert await held_today() == 0
        assert (await act(asked[2]["id"], "accept")).status_code == 200
        assert await held_today() == 1
        assert (await act(asked[2]["id"], "collected")).status_code == 200  # counted at accept
        assert (await act(asked[3]["id"], "collected")).status_code == 200  # straight from pending
        assert await held_today() == 2
        assert (await act(asked[4]["id"], "accept")).status_code == 200
        await http.delete(f"/api/v1/holds/{asked[4]['id']}", headers=bearer(asked[4]["secret"]))
        assert await held_today() == 3  # put aside, then cancelled: it was held
        assert (await act(asked[2]["id"], "accept")).status_code == 409  # no second count
        assert await held_today() == 3


async def test_a_declined_hold_says_why(redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis)
        by_shop, ended, open_one = [(await hold(http, post_id, name=n)).json()
                                    for n in ("Ann", "Bob", "Cyd")]

        async def read(held: dict[str, Any]) -> dict[str, Any]:
            answer = await http.get(f"/api/v1/holds/{held['id']}", headers=bearer(held["secret"]))
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        assert (await read(by_shop))["reason"] is None  # pending: no reason
        assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{by_shop['id']}/decline",
                                headers=auth(shop))).status_code == 200
        assert (await read(by_shop))["status"] == "declined"
        assert (await read(by_shop))["reason"] == "shop"
        assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{open_one['id']}/accept",
                                headers=auth(shop))).status_code == 200
        assert (await http.delete(f"/api/v1/shops/{shop.id}/posts/{post_id}",
                                  headers=auth(shop))).status_code == 200
        seen = await read(ended)
        assert (seen["status"], seen["reason"]) == ("declined", "post_ended")
        seen = await read(open_one)  # accepted: still kept aside, no reason
        assert (seen["status"], seen["reason"]) == ("accepted", None)
        cancelled = await http.delete(f"/api/v1/holds/{open_one['id']}",
                                      headers=bearer(open_one["secret"]))
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["reason"] is None
        schema = (await http.get("/openapi.json")).json()["components"]["schemas"]["HoldView"]
        assert "reason" in schema["properties"]
        assert "reason" not in schema.get("required", [])


async def test_every_answer_about_a_hold_is_kept_by_no_cache(redis: Redis,
                                                               settings: Settings) -> None:
    """The take's answer carries the hold's secret; the others a first name and the code
    said at the till: none may be kept by a cache on the way or the browser's (a second
    cold attacker's)."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis)
        taken = await hold(http, post_id)
        held = taken.json()
        answers = [
            taken,
            await http.get(f"/api/v1/holds/{held['id']}", headers=bearer(held["secret"])),
            await http.get(f"/api/v1/shops/{shop.id}/holds", headers=auth(shop)),
            await http.post(f"/api/v1/shops/{shop.id}/holds/{held['id']}/accept",
                            headers=auth(shop)),
            await http.delete(f"/api/v1/holds/{held['id']}", headers=bearer(held["secret"])),
        ]
        for answer in answers:
            assert answer.status_code in (200, 201), answer.text
            assert answer.headers.get("cache-control") == "no-store", answer.request.url


async def test_a_disabled_shop_s_holds_are_all_declined(redis: Redis,
                                                         settings: Settings) -> None:
    """`streetfeed shops disable` withdrew the posts and declined the pending holds, but an
    accepted one stayed "accepted": its passer-by was told to walk to a shop nobody could
    answer for, even after `enable` (a second cold attacker's)."""
    from rules.clock import SystemClock
    from services.shops import set_disabled

    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis)
        waiting, accepted = [(await hold(http, post_id, name=n)).json() for n in ("Ann", "Bob")]
        assert (await http.post(f"/api/v1/shops/{shop.id}/holds/{accepted['id']}/accept",
                                headers=auth(shop))).status_code == 200
        assert await set_disabled(redis, shop.id, True, SystemClock(), settings) == 1
        for held, reason in ((waiting, "post_ended"), (accepted, "shop_disabled")):
            seen = (await http.get(f"/api/v1/holds/{held['id']}",
                                   headers=bearer(held["secret"]))).json()
            assert (seen["status"], seen["reason"]) == ("declined", reason)
        await set_disabled(redis, shop.id, False, SystemClock(), settings)
        assert await redis.zcard(keys.shop_holds("main", shop.id)) == 0


# --- The take's own script, and its answer whatever follows it -----------------------------

def _record(post_id: str, shop: ShopCreated, address: str) -> HoldRecord:
    now = datetime.now(UTC)
    return HoldRecord(
        id="h_" + secrets.token_hex(8), region="main",
        post=HoldPostRef(id=post_id, kind="new_arrival", title="Noix"),
        shop=HoldShop(id=shop.id, name="Primeur", lat=STREET[0], lon=STREET[1]),
        name="Léa", code="ACDE", secret_hash="0" * 64, created_at=now,
        expires_at=now + timedelta(minutes=30), minutes=30, address=address)


async def test_the_units_left_are_told_by_the_take_s_own_script(
        redis: Redis, settings: Settings) -> None:
    """The refresh that republishes the post with one unit fewer is appended by the take's
    script (and a release's), not by a step after it that a crash can skip: with the
    enricher stopped, the storage step alone leaves it in the region's in-stream."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        async with enricher(redis, settings):
            post_id = await held_post(http, shop, redis)
        # The enricher is stopped: nothing reads the in-stream any more.
        stream = keys.in_stream("main")
        last = (await redis.xrevrange(stream, count=1))[0][0]

        async def refreshes_after(entry: bytes) -> list[tuple[bytes, dict[bytes, bytes]]]:
            return [(i, f) for i, f in await redis.xrange(stream, min=b"(" + entry)
                    if f.get(b"refresh") == post_id.encode()]

        store = HoldStore(redis)
        record = _record(post_id, shop, "a" * 24)
        taken, _ = await store.take(record, yesterday="b" * 24, now=datetime.now(UTC).timestamp(),
                                    limits=AddressLimits(most_open=3, most_per_window=10))
        assert taken is Taken.OK
        added = await refreshes_after(last)
        assert [f for _, f in added] == [{b"refresh": post_id.encode(),
                                          b"shop": shop.id.encode()}]
        assert (await store.change(record, "cancel", datetime.now(UTC)))[0] is Changed.OK
        assert [f for _, f in await refreshes_after(added[-1][0])] == [
            {b"refresh": post_id.encode(), b"shop": shop.id.encode()}]
        # Through the API too, the enricher still stopped.
        last = (await redis.xrevrange(stream, count=1))[0][0]
        assert (await hold(http, post_id)).status_code == 201
        assert len(await refreshes_after(last)) == 1


@contextlib.asynccontextmanager
async def _user_that_may_not_publish(redis: Redis, settings: Settings) -> AsyncIterator[str]:
    """A Redis URL of an ACL user that may do anything but PUBLISH (the server's own ACL:
    each PUBLISH is refused with NOPERM, a real error of the real server)."""
    user, password = "nopublish-" + secrets.token_hex(4), secrets.token_hex(16)
    await redis.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*",
                                "+@all", "-publish", "-spublish")
    try:
        kwargs = redis.connection_pool.connection_kwargs
        yield f"redis://{user}:{password}@{kwargs['host']}:{kwargs['port']}/0"
    finally:
        await redis.execute_command("ACL", "DELUSER", user)


async def test_a_take_answers_its_secret_when_the_consoles_cannot_be_told(
        redis: Redis, settings: Settings) -> None:
    """Telling the shop's consoles after a take is best effort: the take is done, and its
    answer (the only time the secret is shown) must reach the passer-by even when Redis
    refuses the PUBLISH."""
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http:
        post_id = await held_post(http, shop, redis)
    async with _user_that_may_not_publish(redis, settings) as url:
        limited = settings.with_(redis_url=url)
        async with web_server(limited) as web, httpx.AsyncClient(base_url=web.http) as http:
            taken = await hold(http, post_id)
            assert taken.status_code == 201, taken.text
            created = taken.json()
            read = await http.get(f"/api/v1/holds/{created['id']}",
                                  headers=bearer(created["secret"]))
            assert read.status_code == 200 and read.json()["status"] == "pending"
            # And an answer of the shop the same (it is done; the consoles read it later).
            accepted = await http.post(f"/api/v1/shops/{shop.id}/holds/{created['id']}/accept",
                                       headers=auth(shop))
            assert accepted.status_code == 200, accepted.text
