"""Abuse closed (issue 12, finding 4, 5 and the Low ones): each attack run as an attacker
would, against real uvicorn, real Valkey and real HTTP/WebSocket clients.

- a shop flooding edits or profile changes (each one a frame to every socket nearby);
- login CSRF: an auto-submitting text/plain form from another site signing a victim's
  browser into the attacker's shop;
- a QR code built from a forged `Host` header;
- an Idempotency-Key retry of the same post re-serialised;
- `/metrics` read from the public side.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from rules.clock import SystemClock
from rules.errors import ConfigError
from runtime.settings import Settings, load_settings
from services.republish import Republisher
from storage import keys
from storage.ratelimit import WINDOW_S
from storage.shops import get_shop
from tests.helpers import (
    add_shop,
    arrival,
    auth,
    enricher,
    feed_client,
    free_port,
    send_post,
    wait_for,
    web_server,
)

STREET = (44.8370, -0.5735)


def windows_between(start: float, end: float) -> int:
    """How many of the rate limiter's one-minute windows a burst from `start` to `end`
    touched: a burst across a window boundary may use two windows' allowance."""
    return int(end // WINDOW_S) - int(start // WINDOW_S) + 1


# --- Finding 4: edits and profile changes ------------------------------------------------

async def test_a_burst_of_edits_is_limited_and_so_are_the_frames_it_sends(
        redis: Redis, settings: Settings) -> None:
    limit = 10
    settings = settings.with_(shop_posts_per_minute=limit)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as nearby:
        start = time.time()
        post_id = (await send_post(http, shop, arrival("e-1"))).json()["id"]
        await nearby.wait_post(post_id)
        url = f"/api/v1/shops/{shop.id}/posts/{post_id}"
        statuses: list[int] = []
        last_accepted = "e-1"
        for i in range(300):
            response = await http.patch(url, headers=auth(shop), json={"title": f"e{i}"})
            statuses.append(response.status_code)
            if response.status_code == 202:
                last_accepted = f"e{i}"
            else:
                assert response.status_code == 429, response.text
                assert response.json()["error"]["code"] == "rate_limited"
                assert 1 <= int(response.headers["retry-after"]) <= WINDOW_S
        allowed = limit * windows_between(start, time.time())
        accepted = statuses.count(202)
        # The post itself used one of the shop's allowance.
        assert accepted <= allowed - 1, f"{accepted} edits accepted, limit {limit}/min"
        assert statuses.count(429) >= 300 - allowed
        # Every accepted edit reaches the socket, and nothing else does.
        await wait_for(lambda: any(p["title"] == last_accepted for p in nearby.posts()),
                       message=f"the last accepted edit {last_accepted}")
        frames = [p for p in nearby.posts() if p["id"] == post_id]
        assert len(frames) == 1 + accepted <= allowed


async def test_profile_changes_reach_sockets_at_most_once_per_interval(
        redis: Redis, settings: Settings) -> None:
    interval = 3.0  # a minute in production; short here so that the test is too
    settings = settings.with_(shop_posts_per_minute=100, profile_republish_interval_s=interval)
    shop = await add_shop(redis, settings, "Nom 0", *STREET)
    async with web_server(settings) as web, enricher(redis, settings), \
            httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as nearby:
        post_ids = [(await send_post(http, shop, arrival(f"post {i}"))).json()["id"]
                    for i in range(3)]
        for post_id in post_ids:
            await nearby.wait_post(post_id)
        before = len(nearby.frames)
        start = time.monotonic()
        for i in range(1, 51):
            response = await http.patch(f"/api/v1/shops/{shop.id}", headers=auth(shop),
                                        json={"name": f"Nom {i}"})
            assert response.status_code == 200, response.text
            assert response.json()["name"] == f"Nom {i}"

        def latest(post_id: str) -> dict[str, Any]:
            return [p for p in nearby.posts() if p["id"] == post_id][-1]

        # Nothing lost: each card names the shop as it is now, within the interval.
        await wait_for(lambda: all(latest(p)["shop"]["name"] == "Nom 50" for p in post_ids),
                       timeout=interval + 5, message="every card to show the latest name")
        elapsed = time.monotonic() - start
        republished = [f["post"] for f in nearby.frames[before:] if f["type"] == "post"]
        # At most one republish per interval since the first change (the first at once).
        most = 1 + int(elapsed // interval)
        for post_id in post_ids:
            sent = [p for p in republished if p["id"] == post_id]
            assert 1 <= len(sent) <= most, (post_id, [p["shop"]["name"] for p in sent])
        # ...and an interval apart, by the server's own clock (`updated_at` of each frame).
        first = [p for p in republished if p["id"] == post_ids[0]]
        stamps = [datetime.fromisoformat(p["updated_at"]).timestamp() for p in first]
        assert all(b - a >= interval - 0.5 for a, b in itertools.pairwise(stamps)), stamps


async def test_a_folded_profile_change_survives_the_process_that_held_it(
        redis: Redis, settings: Settings) -> None:
    """A claim whose process died lapses after one interval and another process
    republishes; a folded change is republished by exactly one of several processes."""
    settings = settings.with_(profile_republish_interval_s=0.5)
    shop = await add_shop(redis, settings, "Nom", *STREET)
    record = await get_shop(redis, shop.id)
    assert record is not None
    first, second = (Republisher(redis, settings, SystemClock()) for _ in range(2))
    # A process takes the claim for an immediate republish, then dies before doing it.
    lease = await first._changed(
        keys=[keys.republished(record.region, shop.id), keys.republish_due(record.region),
              keys.republish_claims(record.region)],
        args=[shop.id, int(time.time() * 1000), first.interval_ms])
    assert lease > 0
    assert await second.run_due() == 0  # held: not before it lapses
    async def taken_over() -> bool:
        return await second.run_due() == 1
    await wait_for(taken_over, message="the lapsed claim to be taken over")
    # Two changes in one interval: the second waits, then goes out once, from one process.
    await redis.delete(keys.republished(record.region, shop.id))
    assert await first.profile_changed(record) is True
    assert await first.profile_changed(record) is False
    done = 0
    async def republished_once() -> bool:
        nonlocal done
        done += sum(await asyncio.gather(first.run_due(), second.run_due()))
        return done >= 1
    await wait_for(republished_once, message="the folded change")
    assert done == 1
    assert await redis.zcard(keys.republish_due(record.region)) == 0
    assert await redis.zcard(keys.republish_claims(record.region)) == 0


async def test_profile_changes_count_against_the_shop_limit(
        redis: Redis, settings: Settings) -> None:
    limit = 5
    settings = settings.with_(shop_posts_per_minute=limit)
    shop = await add_shop(redis, settings, "Nom", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        start = time.time()
        statuses = [(await http.patch(f"/api/v1/shops/{shop.id}", headers=auth(shop),
                                      json={"name": f"Nom {i}"})).status_code
                    for i in range(50)]
        allowed = limit * windows_between(start, time.time())
        assert statuses.count(200) <= allowed
        assert set(statuses) == {200, 429}
        # The shop's posts share that allowance.
        if windows_between(start, time.time()) == 1:
            limited = await send_post(http, shop, arrival())
            assert (limited.status_code, limited.json()["error"]["code"]) == (
                429, "rate_limited")


# --- Finding 5: login CSRF -----------------------------------------------------------------

async def test_sign_in_refuses_a_cross_site_form_and_ambiguous_bodies(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Attaquant", *STREET)
    # What `<form enctype="text/plain">` with one field named `{"token":"` and the value
    # `","shop_id":"<id>","token":"<token>"}` submits: the duplicate `token` hides the `=`
    # that the form encoding puts between name and value.
    name, value = '{"token":"', f'","shop_id":"{shop.id}","token":"{shop.token}"}}'
    form_body = f"{name}={value}".encode()
    assert json.loads(form_body)["token"] == shop.token  # last key wins in most parsers
    good = json.dumps({"shop_id": shop.id, "token": shop.token}).encode()
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        async def sign_in(body: bytes, headers: dict[str, str]) -> httpx.Response:
            http.cookies.clear()
            return await http.post("/api/v1/session", content=body, headers=headers)

        evil = {"Origin": "https://evil.example"}
        attack = await sign_in(form_body, {**evil, "Content-Type": "text/plain"})
        assert attack.status_code in (403, 415), attack.text
        assert attack.json()["error"]["code"] in ("cross_origin", "unsupported_media_type")
        assert "set-cookie" not in attack.headers
        # Each defence on its own.
        foreign_json = await sign_in(good, {**evil, "Content-Type": "application/json"})
        assert (foreign_json.status_code, foreign_json.json()["error"]["code"]) == (
            403, "cross_origin")
        plain = await sign_in(good, {"Content-Type": "text/plain"})
        assert (plain.status_code, plain.json()["error"]["code"]) == (
            415, "unsupported_media_type")
        duplicate = await sign_in(form_body, {"Content-Type": "application/json"})
        assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (
            400, "duplicate_key")
        assert await redis.keys("sf:session:*") == []
        # The console's own sign-in still works: same origin, JSON, with a charset too.
        for headers in ({"Origin": web.http, "Content-Type": "application/json"},
                        {"Content-Type": "application/json; charset=utf-8"}):
            signed = await sign_in(good, headers)
            assert signed.status_code == 200, signed.text
            assert "set-cookie" in signed.headers


# --- Low: QR code, Idempotency-Key, /metrics ---------------------------------------------

async def test_qr_code_names_the_configured_public_url_whatever_the_host(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    query = f"/?lat=44.83700&lon=-0.57350&radius_m=500&shop={shop.id}"
    configured = settings.with_(public_url="https://rue.example/")
    async with web_server(configured) as web, httpx.AsyncClient(base_url=web.http) as http:
        url = f"/api/v1/shops/{shop.id}/qr.svg"
        honest = await http.get(url)
        forged = await http.get(url, headers={"Host": "evil.example"})
        for response in (honest, forged):
            assert response.status_code == 200
            assert response.headers["x-qr-target"] == f"https://rue.example{query}"
        assert forged.content == honest.content
    # Not configured: the address this server was started on, never the Host header.
    port = free_port()
    async with web_server(settings.with_(port=port), port=port) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        forged = await http.get(url, headers={"Host": "evil.example"})
        assert forged.headers["x-qr-target"] == f"http://127.0.0.1:{port}{query}"


async def test_idempotency_key_retry_of_the_same_post_reserialised(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        first = await send_post(http, shop, b'{"title":"a","kind":"new_arrival"}', "k-1")
        assert first.status_code == 202
        again = await send_post(http, shop, b'{"kind": "new_arrival", "title": "a"}', "k-1")
        assert (again.status_code, again.json()) == (202, first.json())
        other = await send_post(http, shop, b'{"kind": "new_arrival", "title": "b"}', "k-1")
        assert (other.status_code, other.json()["error"]["code"]) == (
            409, "idempotency_key_reused")
        assert await redis.xlen(keys.in_stream(settings.region)) == 1


@contextlib.asynccontextmanager
async def local_and_public(settings: Settings) -> AsyncIterator[
        tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A server on 127.0.0.1, and two clients: one from 127.0.0.1, one from 127.0.0.2,
    which stands for any other address (one machine, real sockets)."""
    remote = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as local, \
            httpx.AsyncClient(base_url=web.http, transport=remote) as public:
        yield local, public


async def test_metrics_are_not_served_to_the_public(redis: Redis, settings: Settings) -> None:
    async with local_and_public(settings) as (local, public):
        # Without a token: the local Prometheus (and the tests) read it...
        ok = await local.get("/metrics")
        assert ok.status_code == 200 and "streetfeed_" in ok.text
        # ...nobody else, nor a request a local reverse proxy forwards for someone.
        for response in (await public.get("/metrics"),
                         await local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})):
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
            assert "streetfeed_" not in response.text
    token = "m" * 43
    async with local_and_public(settings.with_(metrics_token=token)) as (local, public):
        ok = await public.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "streetfeed_" in ok.text
        # With a token set it is needed from everywhere: a proxy on this host makes every
        # visitor look local.
        for client, headers in ((public, {}), (local, {}),
                                (public, {"Authorization": f"Bearer {token[:-1]}x"}),
                                (public, {"Authorization": f"Basic {token}"})):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "invalid_token"
            assert refused.headers["www-authenticate"].startswith("Bearer")


def test_public_url_and_metrics_token_are_checked_at_start() -> None:
    loaded = load_settings({"STREETFEED_PUBLIC_URL": "https://rue.example:8443/",
                            "STREETFEED_METRICS_TOKEN": "t" * 32})
    assert loaded.public_base_url == "https://rue.example:8443"
    assert loaded.metrics_token == "t" * 32 and "t" * 32 not in repr(loaded)
    assert load_settings({}, host="0.0.0.0", port=8000).public_base_url == (
        "http://127.0.0.1:8000")
    for bad in ("rue.example", "ftp://rue.example", "https://rue.example/feed",
                "https://rue.example/?x=1", "https://user:pw@rue.example"):
        with pytest.raises(ConfigError, match="STREETFEED_PUBLIC_URL"):
            load_settings({"STREETFEED_PUBLIC_URL": bad})
    with pytest.raises(ConfigError, match="STREETFEED_METRICS_TOKEN"):
        load_settings({"STREETFEED_METRICS_TOKEN": "short"})


async def test_hours_changes_count_against_the_shop_limit(
        redis: Redis, settings: Settings) -> None:
    """Cold try of issue 12: PUT /hours was not counted (3,179 writes in 20 s from one token,
    each reloading the shop list's cache)."""
    limit = 5
    settings = settings.with_(shop_posts_per_minute=limit)
    shop = await add_shop(redis, settings, "Nom", *STREET)
    hours = {"timezone": "Europe/Paris", "weekly": {"mon": [{"open": "09:00", "close": "19:00"}]}}
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        start = time.time()
        statuses = [(await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth(shop),
                                    json=hours)).status_code for _ in range(30)]
        assert statuses.count(200) <= limit * windows_between(start, time.time())
        assert set(statuses) == {200, 429}
