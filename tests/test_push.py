"""Alerts for followed shops (Web Push, DESIGN.md section 9), from outside: real uvicorn,
the real enricher and pusher, Valkey, and a local push service (tests/push_receiver.py)
that verifies each push's VAPID JWT and decrypts its body as a browser would.

Every wait is on a condition (an alert arrived, a key is gone, the pusher's due time);
the pusher's clock is a ManualClock where hours and days must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from rules.clock import Clock, ManualClock, SystemClock
from rules.push_endpoint import check_endpoint
from runtime.settings import Settings
from schemas.limits import PUSH_MESSAGE_MAX
from schemas.push import PushRecord, Waiting
from schemas.shops import ShopCreated
from storage import keys
from storage.vapid import VAPID_FILE, load_vapid_key
from streetfeed.embedded import EmbeddedServer
from tests.helpers import (
    Service,
    add_shop,
    arrival,
    auth,
    bearer,
    enricher,
    flash,
    free_port,
    live_post,
    pusher,
    service_env,
    wait_for,
    wait_http,
    web_server,
)
from tests.push_receiver import PushReceiver, b64url
from workers.pusher import Pusher

# A push arrives within 10 s of its post being published (DESIGN.md section 9).
ALERT_S = 10.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[PushReceiver]:
    server = PushReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def push_settings(settings: Settings, receiver: PushReceiver) -> Settings:
    receiver.reset()
    return settings.with_(push_allowed_hosts=(receiver.host,), push_poll_s=0.05,
                          pusher_block_ms=100, push_subscribes_per_address_per_hour=1000)


@contextlib.asynccontextmanager
async def street(redis: Redis, settings: Settings, receiver: PushReceiver,
                 clock: Clock | None = None, *, with_pusher: bool = True,
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """Web, enricher and (unless told) pusher; an HTTP client of the web process, with the
    receiver told the deployment's public key."""
    async with web_server(settings) as server, enricher(redis, settings), \
            httpx.AsyncClient(base_url=server.http) as http:
        receiver.public_key = (await http.get("/api/v1/push/key")).json()["public_key"]
        if with_pusher:
            async with pusher(redis, settings, clock):
                yield http
        else:
            yield http


async def subscribe(http: httpx.AsyncClient, receiver: PushReceiver, shops: list[str],
                    **extra: Any) -> tuple[str, dict[str, Any]]:
    """A browser subscribes: its name at the receiver, and the 201's body."""
    subscription = receiver.subscription()
    name = subscription["endpoint"].rsplit("/", 1)[1]
    answer = await http.post("/api/v1/push/subscriptions",
                             json={"subscription": subscription, "shops": shops, **extra})
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return name, answer.json()


async def delivered(receiver: PushReceiver, name: str, post_id: str,
                    timeout: float = ALERT_S) -> Any:
    await wait_for(lambda: any(p.post_id == post_id for p in receiver.delivered(name)),
                   timeout, f"the alert of {post_id} at {name}")
    assert receiver.errors() == []
    return next(p for p in receiver.delivered(name) if p.post_id == post_id)


async def two_shops(redis: Redis, settings: Settings) -> tuple[ShopCreated, ShopCreated]:
    return (await add_shop(redis, settings, "Au Pain Doré"),
            await add_shop(redis, settings, "Fromagerie Test", category="cheese"))


# --- The API ------------------------------------------------------------------------------


async def test_key_subscribe_change_and_remove(redis: Redis, push_settings: Settings,
                                               receiver: PushReceiver) -> None:
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver, with_pusher=False) as http:
        key = (await http.get("/api/v1/push/key")).json()["public_key"]
        assert len(key) == 87 and key == load_vapid_key(push_settings).public
        # Repeats folded, a shop that does not exist dropped (and said).
        name, created = await subscribe(http, receiver, [a.id, a.id, "no-such-shop", b.id],
                                        kinds=["flash_offer"])
        assert set(created) == {"id", "secret", "shops"} and created["shops"] == [a.id, b.id]
        sub, secret = created["id"], created["secret"]
        record = await redis.get(keys.push_subscription(sub))
        assert record is not None and secret.encode() not in record
        assert await redis.sismember(keys.push_shop(a.id), sub)
        ttl = await redis.ttl(keys.push_subscription(sub))
        assert 89 * 86400 < ttl <= 90 * 86400

        path = f"/api/v1/push/subscriptions/{sub}"
        change = {"shops": [b.id], "quiet_hours": False, "timezone": "America/New_York"}
        for headers, status, code in [({}, 401, "missing_token"),
                                      (bearer("wrong"), 404, "unknown_push_subscription"),
                                      ({"Authorization": "Basic x"}, 401, "missing_token")]:
            refused = await http.put(path, json=change, headers=headers)
            assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
            refused = await http.delete(path, headers=headers)
            assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
        await redis.expire(keys.push_subscription(sub), 100)
        changed = await http.put(path, json=change, headers=bearer(secret))
        assert changed.status_code == 200 and changed.headers["cache-control"] == "no-store"
        assert changed.json() == {"id": sub, "shops": [b.id], "kinds": [
            "new_arrival", "flash_offer", "opening_change"], "quiet_hours": False,
            "timezone": "America/New_York"}
        assert await redis.ttl(keys.push_subscription(sub)) > 89 * 86400  # PUT refreshes
        assert not await redis.sismember(keys.push_shop(a.id), sub)
        assert await redis.sismember(keys.push_shop(b.id), sub)
        # quiet_hours and timezone stay when a PUT leaves them out.
        kept = await http.put(path, json={"shops": [a.id], "kinds": ["new_arrival"]},
                              headers=bearer(secret))
        assert kept.json()["quiet_hours"] is False
        assert kept.json()["timezone"] == "America/New_York"

        # The same browser subscribing again replaces its subscription.
        again = await http.post("/api/v1/push/subscriptions", json={
            "subscription": {"endpoint": receiver.endpoint(name), "keys": {
                "p256dh": receiver.subscription(name)["keys"]["p256dh"],
                "auth": receiver.subscription(name)["keys"]["auth"]}},
            "shops": [b.id]})
        assert again.status_code == 201
        assert await redis.get(keys.push_subscription(sub)) is None
        assert not await redis.sismember(keys.push_shop(a.id), sub)
        replaced = await http.put(path, json=change, headers=bearer(secret))
        assert replaced.status_code == 404

        new_path = f"/api/v1/push/subscriptions/{again.json()['id']}"
        gone = await http.delete(new_path, headers=bearer(again.json()["secret"]))
        assert gone.status_code == 204
        assert await redis.keys(f"{keys.PUSH_PREFIX}sub:*") == []
        assert await redis.keys(f"{keys.PUSH_PREFIX}shop:*") == []
        assert (await http.delete(new_path, headers=bearer(again.json()["secret"]))
                ).status_code == 404


async def test_bad_bodies_answer_a_4xx_with_a_code(redis: Redis, push_settings: Settings,
                                                   receiver: PushReceiver) -> None:
    a, _ = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver, with_pusher=False) as http:
        good = receiver.subscription()

        def body(**change: Any) -> dict[str, Any]:
            return {"subscription": good, "shops": [a.id], **change}

        def keys_(**change: Any) -> dict[str, Any]:
            return {**good, "keys": {**good["keys"], **change}}

        cases: list[tuple[Any, int, str]] = [
            (b"{", 400, "malformed_json"),
            (json.dumps(body())[:-1].encode() + f', "shops": ["{a.id}"]}}'.encode(), 400,
             "duplicate_key"),
            ({"shops": [a.id]}, 422, "invalid_push_subscription"),
            (body(shops=[]), 422, "invalid_push_subscription"),
            (body(shops=[f"s{i}" for i in range(51)]), 422, "invalid_push_subscription"),
            (body(shops=["Not An Id"]), 422, "invalid_push_subscription"),
            (body(kinds=["coupon"]), 422, "invalid_push_subscription"),
            (body(quiet_hours="yes"), 422, "invalid_push_subscription"),
            (body(timezone="Mars/Olympus"), 422, "invalid_push_subscription"),
            (body(extra=1), 422, "invalid_push_subscription"),
            (body(shops=["no-such-shop"]), 422, "unknown_shop"),
            (body(subscription=keys_(auth="c2hvcnQ")), 422, "invalid_push_subscription"),
            (body(subscription=keys_(auth=b64url(bytes(17)))), 422, "invalid_push_keys"),
            (body(subscription=keys_(p256dh=b64url(b"\x04" + b"\x01" * 64))), 422,
             "invalid_push_keys"),
            (body(subscription={**good, "endpoint": "https://evil.example/x"}), 422,
             "push_endpoint_not_allowed"),
        ]
        for content, status, code in cases:
            raw = content if isinstance(content, bytes) else httpx.Request(
                "POST", "/", json=content).content
            answer = await http.post("/api/v1/push/subscriptions", content=raw,
                                     headers={"Content-Type": "application/json"})
            assert answer.status_code == status, (content, answer.text)
            assert answer.json()["error"]["code"] == code, (content, answer.text)
        plain = await http.post("/api/v1/push/subscriptions", content=b"{}",
                                headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        # A page of another site cannot subscribe its visitors, as for holds.
        cross = await http.post("/api/v1/push/subscriptions", json=body(), headers={
            "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert (cross.status_code, cross.json()["error"]["code"]) == (403, "cross_origin")
        assert await redis.keys(f"{keys.PUSH_PREFIX}sub:*") == []


async def test_subscribing_is_limited_per_address(redis: Redis, push_settings: Settings,
                                                  receiver: PushReceiver) -> None:
    a, _ = await two_shops(redis, push_settings)
    limited = push_settings.with_(push_subscribes_per_address_per_hour=2)
    async with street(redis, limited, receiver, with_pusher=False) as http:
        for _ in range(2):
            await subscribe(http, receiver, [a.id])
        third = await http.post("/api/v1/push/subscriptions",
                                json={"subscription": receiver.subscription(), "shops": [a.id]})
        assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"
        assert int(third.headers["retry-after"]) > 0


@pytest.mark.parametrize("endpoint", [
    "http://push.example.com/x",  # http on a host not allowed
    "https://127.0.0.1/x", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/x", "https://fcm.googleapis.com:8443/fcm/send/x",
    "https://user:pw@fcm.googleapis.com/fcm/send/x",
    "http://127.0.0.1:1/x",  # the receiver's host, another port
])
async def test_ssrf_endpoints_are_refused(redis: Redis, push_settings: Settings,
                                          receiver: PushReceiver, endpoint: str) -> None:
    a, _ = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver, with_pusher=False) as http:
        answer = await http.post("/api/v1/push/subscriptions", json={
            "subscription": {**receiver.subscription(), "endpoint": endpoint}, "shops": [a.id]})
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "push_endpoint_not_allowed"
        assert endpoint not in answer.text


# --- Delivery -----------------------------------------------------------------------------


async def test_a_followed_shops_post_is_pushed_encrypted_and_signed(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver) as http:
        name, _ = await subscribe(http, receiver, [a.id], kinds=["flash_offer"],
                                  quiet_hours=False)
        # Not wanted (a new arrival), not followed (shop b): nothing; then the flash offer.
        skipped = [await live_post(http, a, redis, arrival("Fraises")),
                   await live_post(http, b, redis, flash("Comté -20 %"))]
        posted = time.time()
        post_id = await live_post(http, a, redis, flash("Baguette -30 %", minutes=45))
        published = datetime.now(UTC)
        push = await delivered(receiver, name, post_id)
        # From the shop's POST (the post is live in between) to the push service's receipt.
        assert push.at - posted < ALERT_S
        print(f"FIGURES push: post_to_received_s={push.at - posted:.2f}")
        message = push.message
        assert message["type"] == "post" and message["url"] == f"/?post={post_id}"
        live = await redis.hget(keys.post("main", post_id), "json")
        assert message["post"] == json.loads(live)  # the `post` frame's JSON
        assert message["post"]["shop"]["name"] == "Au Pain Doré"
        ends = datetime.fromisoformat(message["post"]["expires_at"])
        assert 0 < int(push.headers["TTL"]) <= (ends - published).total_seconds() + 1
        assert push.headers["Urgency"] == "high" and len(push.headers["Topic"]) <= 32
        assert push.claims is not None and push.claims["aud"] == receiver.origin
        assert push.claims["sub"].startswith("mailto:")
        assert not any(p.post_id in skipped for p in receiver.pushes())
        assert len(receiver.pushes(name)) == 1


async def test_an_edit_does_not_alert_again(redis: Redis, push_settings: Settings,
                                            receiver: PushReceiver) -> None:
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver) as http:
        name, _ = await subscribe(http, receiver, [a.id, b.id], quiet_hours=False)
        post_id = await live_post(http, a, redis, arrival("Fraises"))
        await delivered(receiver, name, post_id)
        edited = await http.patch(f"/api/v1/shops/{a.id}/posts/{post_id}",
                                  json={"title": "Fraises gariguette"}, headers=auth(a))
        assert edited.status_code == 202, edited.text
        await wait_for(lambda: _title_is(redis, post_id, "Fraises gariguette"),
                       message="the edit published")
        # A later post of another shop arrives: the edit, before it, sent nothing.
        later = await live_post(http, b, redis, arrival("Comté 24 mois"))
        await delivered(receiver, name, later)
        assert [p.post_id for p in receiver.pushes(name)] == [post_id, later]


async def _title_is(redis: Redis, post_id: str, title: str) -> bool:
    raw = await redis.hget(keys.post("main", post_id), "json")
    return raw is not None and f'"title":"{title}"'.encode() in raw


async def test_410_deletes_the_subscription_and_429_and_5xx_are_retried(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver) as http:
        gone, gone_sub = await subscribe(http, receiver, [a.id], quiet_hours=False)
        busy, _ = await subscribe(http, receiver, [a.id, b.id], quiet_hours=False)
        receiver.answer(gone, 410)
        receiver.answer(busy, 429, headers={"Retry-After": "1"})
        post_id = await live_post(http, a, redis, arrival("Fraises"))
        await delivered(receiver, busy, post_id)
        retried = receiver.pushes(busy)
        assert [p.status for p in retried] == [429, 201]
        assert retried[1].at - retried[0].at >= 0.9  # Retry-After honoured
        await wait_for(lambda: _gone(redis, gone_sub["id"]), message="410 deletes")
        assert not await redis.sismember(keys.push_shop(a.id), gone_sub["id"])
        assert len(receiver.pushes(gone)) == 1
        # A 500 is retried with backoff too; the alert goes once it is taken.
        receiver.answer(busy, 500)
        other = await live_post(http, b, redis, arrival("Comté"))
        await delivered(receiver, busy, other)
        assert [p.status for p in receiver.pushes(busy) if p.post_id == other] == [500, 201]
        assert [p.post_id for p in receiver.delivered(busy)] == [post_id, other]


async def _gone(redis: Redis, sub_id: str) -> bool:
    return not await redis.exists(keys.push_subscription(sub_id))


async def test_a_redirect_is_not_followed(redis: Redis, push_settings: Settings,
                                          receiver: PushReceiver) -> None:
    """An allowed endpoint answering a redirect (to an address it could not subscribe with)
    is not followed: the alert is dropped, nothing reaches where it points."""
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver) as http:
        name, _ = await subscribe(http, receiver, [a.id, b.id], quiet_hours=False)
        receiver.answer(name, 307, headers={"Location": f"{receiver.origin}/stolen"})
        first = await live_post(http, a, redis, arrival("Fraises"))
        later = await live_post(http, b, redis, arrival("Comté"))
        await delivered(receiver, name, later)
        assert [(p.post_id, p.status) for p in receiver.pushes(name)] == [(first, 307),
                                                                          (later, 201)]
        assert receiver.stolen == []


def _zone_at_local_hour(hour: int, now: datetime) -> str:
    """A fixed-offset zone where it is `hour` o'clock at `now`."""
    offset = (hour - now.astimezone(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


async def _due_at(redis: Redis, sub_id: str) -> float | None:
    score = await redis.zscore(keys.push_due(), sub_id)
    return None if score is None else float(score)


async def test_quiet_hours_and_the_hourly_limit_through_the_real_pusher(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    """On the pusher's controlled clock: a subscription in quiet hours (07:xx on its device)
    gets nothing until 08:00, then the flash offer first; one that opted out gets its alert
    at once, and a second post of the same shop an hour after the first."""
    clock = ManualClock()
    zone = _zone_at_local_hour(7, clock.now())
    eight = datetime.combine(clock.now().astimezone(ZoneInfo(zone)).date(),
                             datetime.min.time().replace(hour=8), tzinfo=ZoneInfo(zone))
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver, clock) as http:
        quiet, quiet_sub = await subscribe(http, receiver, [a.id, b.id], timezone=zone)
        awake, awake_sub = await subscribe(http, receiver, [a.id], quiet_hours=False)
        fraises = await live_post(http, a, redis, arrival("Fraises"))
        await delivered(receiver, awake, fraises)
        offer = await live_post(http, b, redis, flash("Comté -20 %", minutes=180))
        # The quiet one waits for 08:00 on its device, and nothing went.
        await wait_for(lambda: _is(redis, quiet_sub["id"], eight.timestamp()),
                       message="the quiet subscription due at 08:00")
        assert receiver.pushes(quiet) == []

        # A second post of shop a, a minute later (on a frozen clock both would be queued at
        # once, and which goes first would be a draw): the awake one waits for the hour
        # since its last alert.
        first_sent = clock.now().timestamp()
        clock.advance(60)
        baguette = await live_post(http, a, redis, arrival("Baguette de tradition"))
        await wait_for(lambda: _is(redis, awake_sub["id"], first_sent + 3600),
                       message="the awake subscription due an hour after its alert")
        assert [p.post_id for p in receiver.pushes(awake)] == [fraises]

        # 08:00 on the device: the flash offer first, then the arrival of the other shop;
        # shop a's second post waits for the hour since shop a's last alert.
        clock.set(eight + timedelta(seconds=1))
        await delivered(receiver, quiet, fraises)
        assert [p.post_id for p in receiver.delivered(quiet)] == [offer, fraises]
        # The pusher is done with that turn (the quiet one due at the hour) before the
        # clock moves on: a whole run's CI once waited for the baguette in vain after the
        # jump (not reproduced alone; the cause is not proven).
        await wait_for(lambda: _is(redis, quiet_sub["id"], eight.timestamp() + 1 + 3600),
                       message="the quiet subscription due an hour after its alert")
        clock.set(eight + timedelta(seconds=3602))  # also past the awake one's hour
        await delivered(receiver, quiet, baguette)
        await delivered(receiver, awake, baguette)
        assert [p.post_id for p in receiver.pushes(awake)] == [fraises, baguette]
        assert [p.post_id for p in receiver.pushes(quiet)] == [offer, fraises, baguette]


async def _is(redis: Redis, sub_id: str, when: float) -> bool:
    due = await _due_at(redis, sub_id)
    return due is not None and abs(due - when) < 1.0


async def _pusher_reading(redis: Redis, count: int) -> bool:
    """`count` pushers have read the feed (each XREADGROUP names its consumer)."""
    consumers = await redis.xinfo_consumers(keys.feed_stream("main"), keys.PUSHER_GROUP)
    return len(consumers) >= count


async def test_the_pusher_killed_and_restarted_delivers_once(
        redis: Redis, push_settings: Settings, receiver: PushReceiver, tmp_path: Path) -> None:
    """A real `streetfeed pusher` process, killed with SIGKILL: what was published while it
    was down is alerted when it is back (its group kept the place), nothing twice; its log
    names no endpoint and no key."""
    a, b = await two_shops(redis, push_settings)
    c = await add_shop(redis, push_settings, "Cave Test", category="wine")
    env = service_env(push_settings.redis_url or "",
                      STREETFEED_DATA_DIR=str(push_settings.data_dir),
                      STREETFEED_PUSH_ALLOWED_HOSTS=receiver.host)
    log_path = tmp_path / "pusher.log"
    async with street(redis, push_settings, receiver, with_pusher=False) as http:
        name, created = await subscribe(http, receiver, [a.id, b.id, c.id], quiet_hours=False)
        first = Service(["pusher"], env, log_path).start()
        try:
            await wait_for(lambda: _pusher_reading(redis, 1), 20, "the pusher reading")
            before = await live_post(http, a, redis, arrival("Fraises"))
            await delivered(receiver, name, before)
        finally:
            first.kill()
        while_down = await live_post(http, b, redis, arrival("Comté"))
        second = Service(["pusher"], env, log_path).start()
        try:
            await delivered(receiver, name, while_down, timeout=20)
            after = await live_post(http, c, redis, arrival("Pessac-Léognan 2019"))
            await delivered(receiver, name, after)
        finally:
            assert second.terminate() == 0
    assert [p.post_id for p in receiver.pushes(name)] == [before, while_down, after]
    log = log_path.read_text(errors="replace")
    subscription = await redis.get(keys.push_subscription(created["id"]))
    assert subscription is not None
    stored = json.loads(subscription)
    for secret in (name, stored["p256dh"], stored["auth"], created["secret"]):
        assert secret not in log
    assert (push_settings.data_dir / VAPID_FILE).read_text().splitlines()[1] not in log


async def test_nothing_stored_tells_a_position_an_address_or_a_device(
        redis: Redis, push_settings: Settings, receiver: PushReceiver,
        caplog: pytest.LogCaptureFixture) -> None:
    """Every key the alerts keep, read back after a subscription and an alert: no position,
    no client address, no user agent; and the logs carry no endpoint and no key."""
    caplog.set_level(logging.DEBUG)
    a, _ = await two_shops(redis, push_settings)
    address, agent = "203.0.113.77", "Mozilla/5.0 (DistinctivePhone 9.9)"
    async with street(redis, push_settings, receiver) as http:
        receiver_name = None
        subscription = receiver.subscription()
        receiver_name = subscription["endpoint"].rsplit("/", 1)[1]
        created = await http.post("/api/v1/push/subscriptions", json={
            "subscription": subscription, "shops": [a.id], "quiet_hours": False,
            "timezone": "Europe/Paris"},
            headers={"X-Forwarded-For": address, "User-Agent": agent})
        assert created.status_code == 201, created.text
        post_id = await live_post(http, a, redis, flash("Tarte aux fraises -50 %",
                                                        text="Fraises " * 62))
        await delivered(receiver, receiver_name, post_id)
        # The longest text a post may carry still fits one push message.
        assert max(p.size for p in receiver.pushes(receiver_name)) <= PUSH_MESSAGE_MAX
        values: list[bytes] = []
        async for key in redis.scan_iter(match="*"):
            kind = (await redis.type(key)).decode()
            if kind == "string":
                values.append(await redis.get(key) or b"")
            elif kind == "hash":
                values += [k + b"=" + v for k, v in (await redis.hgetall(key)).items()]
            elif kind == "set":
                values += list(await redis.smembers(key))
            elif kind == "zset":
                values += [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
            if key.startswith(keys.PUSH_PREFIX.encode()):
                pushed = values[-1] if values else b""
                for word in (b'"lat"', b'"lon"', b"latitude", b"position"):
                    assert word not in pushed, (key, pushed)
            values.append(key)
        everything = b"\n".join(values)
        assert address.encode() not in everything
        assert b"DistinctivePhone" not in everything
    logs = caplog.text
    for secret in (receiver_name, subscription["keys"]["p256dh"], subscription["keys"]["auth"],
                   created.json()["secret"], address, "DistinctivePhone"):
        assert secret not in logs
    private = load_vapid_key(push_settings).private.private_numbers().private_value
    assert str(private) not in logs and f"{private:x}" not in logs


async def test_up_runs_a_pusher_signing_with_the_key_its_pages_hand_out(
        redis: Redis, push_settings: Settings, receiver: PushReceiver, tmp_path: Path) -> None:
    """`streetfeed up --data-dir D` without any VAPID setting: the key is made once in D
    (mode 0600), its web process hands out its public half and its pusher child signs with
    it (a child on another data dir signed with another key: every push refused)."""
    data = tmp_path / "elsewhere"
    port = free_port()
    env = service_env(push_settings.redis_url or "",
                      STREETFEED_PUSH_ALLOWED_HOSTS=receiver.host)
    up = Service(["up", "--no-demo", "--port", str(port), "--data-dir", str(data)], env,
                 tmp_path / "up.log").start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", 30)
        key_file = data / VAPID_FILE
        assert key_file.stat().st_mode & 0o777 == 0o600
        shop = await add_shop(redis, push_settings)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            public = (await http.get("/api/v1/push/key")).json()["public_key"]
            assert public == load_vapid_key(push_settings.with_(data_dir=data)).public
            receiver.public_key = public
            name, _ = await subscribe(http, receiver, [shop.id], quiet_hours=False)
            post_id = await live_post(http, shop, redis, arrival("Fraises"))
            push = await delivered(receiver, name, post_id, timeout=20)
            assert push.claims is not None
    finally:
        assert up.terminate() == 0, up.log()


async def test_a_redelivered_feed_entry_alerts_once(redis: Redis, push_settings: Settings,
                                                    receiver: PushReceiver) -> None:
    """A feed entry read again (a pusher that died before acknowledging it, XAUTOCLAIM)
    queues nothing more, before or after its alert went."""
    a, _ = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver, with_pusher=False) as http:
        name, created = await subscribe(http, receiver, [a.id], quiet_hours=False)
        post_id = await live_post(http, a, redis, arrival("Fraises"))
        entries = await redis.xrange(keys.feed_stream("main"))
        entry = next(e for e in entries if post_id.encode() in e[1][b"d"])
        idle = Pusher(redis, push_settings, SystemClock(), load_vapid_key(push_settings))
        try:
            waiting = keys.push_waiting(created["id"])
            for _ in range(2):
                await idle.process("main", [entry])
                assert await redis.hkeys(waiting) == [post_id.encode()]
            async with pusher(redis, push_settings):
                await delivered(receiver, name, post_id)
            await idle.process("main", [entry])
            assert await redis.hlen(waiting) == 0
            assert await redis.zcard(keys.push_sent(created["id"])) == 1
        finally:
            await idle.client.aclose()
        assert len(receiver.pushes(name)) == 1


async def test_an_alert_waiting_for_a_shop_no_longer_followed_is_dropped(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    clock = ManualClock()
    zone = _zone_at_local_hour(7, clock.now())
    eight = datetime.combine(clock.now().astimezone(ZoneInfo(zone)).date(),
                             datetime.min.time().replace(hour=8), tzinfo=ZoneInfo(zone))
    a, b = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver, clock) as http:
        name, created = await subscribe(http, receiver, [a.id], timezone=zone)
        unfollowed = await live_post(http, a, redis, arrival("Fraises"))
        await wait_for(lambda: _is(redis, created["id"], eight.timestamp()),
                       message="the alert waiting for 08:00")
        changed = await http.put(f"/api/v1/push/subscriptions/{created['id']}",
                                 json={"shops": [b.id]}, headers=bearer(created["secret"]))
        assert changed.status_code == 200
        followed = await live_post(http, b, redis, arrival("Comté"))
        clock.set(eight + timedelta(seconds=1))
        await delivered(receiver, name, followed)
        assert unfollowed not in [p.post_id for p in receiver.pushes(name)]


async def test_quiet_hours_turned_off_let_what_waits_go_at_once(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    """Regression: a PUT with `quiet_hours: false` (or another time zone) left the alerts
    already waiting due at 08:00: "also at night" ticked at 22:00 never told of an offer
    posted at 21:30 that ends at 23:00."""
    zone = _zone_at_local_hour(3, datetime.now(UTC))
    a, _ = await two_shops(redis, push_settings)
    async with street(redis, push_settings, receiver) as http:
        name, created = await subscribe(http, receiver, [a.id], timezone=zone)
        offer = await live_post(http, a, redis, flash("Fraises -30 %", minutes=60))
        # Looked at again when it may go (08:00) or has to be dropped (its end): not now.
        await wait_for(lambda: _waits_beyond(redis, created["id"], 600),
                       message="the alert waiting")
        assert receiver.pushes(name) == []
        changed = await http.put(f"/api/v1/push/subscriptions/{created['id']}",
                                 json={"shops": [a.id], "quiet_hours": False},
                                 headers=bearer(created["secret"]))
        assert changed.status_code == 200
        await delivered(receiver, name, offer)


async def _waits_beyond(redis: Redis, sub_id: str, seconds: float) -> bool:
    due = await _due_at(redis, sub_id)
    return due is not None and due > datetime.now(UTC).timestamp() + seconds


async def test_a_push_service_trickling_its_answer_is_given_up_at_the_timeout(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    """Regression: httpx's timeout is per read, and a service sending a header byte every
    second held a send (one of push_concurrency) for as long as it liked (90 s seen)."""
    stop = asyncio.Event()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 201 Created\r\nX-Slow: ")
            for _ in range(30):  # 15 s at most, then the head ends (the code before: 201)
                if stop.is_set():
                    break
                writer.write(b"a")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
            writer.write(b"\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = push_settings.with_(push_allowed_hosts=(f"127.0.0.1:{port}",), push_timeout_s=1)
    keys_of = receiver.subscription()["keys"]
    now = datetime.now(UTC)
    record = PushRecord(id="s_trickle", endpoint=f"http://127.0.0.1:{port}/slow",
                        p256dh=keys_of["p256dh"], auth=keys_of["auth"], shops=["a"],
                        kinds=["flash_offer"], quiet_hours=False, timezone="UTC",
                        secret_hash="", created_at=now, updated_at=now)
    waiting = Waiting(post_id="p_0000000000000000", region="main", shop_id="a",
                      kind="flash_offer", expires_ts=now.timestamp() + 3600,
                      queued_ts=now.timestamp())
    try:
        async with pusher(redis, settings) as worker:
            started = time.monotonic()
            outcome = await worker.deliver(record, check_endpoint(record.endpoint, frozenset(
                {("127.0.0.1", port)})), waiting, b'{"type":"post"}', now.timestamp())
            took = time.monotonic() - started
    finally:
        stop.set()
        server.close()
        await server.wait_closed()
    # No answer (retried later), well before the trickle would have ended it.
    assert outcome.status == 0
    assert took < 5, took


class _SlowPushService:
    """A push service on loopback that takes a while, then answers 503 (retry later)."""

    def __init__(self) -> None:
        self.requests = 0
        self.got_one = asyncio.Event()
        self.answer = asyncio.Event()  # set: answer now
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
            await reader.readexactly(length)
            self.requests += 1
            self.got_one.set()
            await self.answer.wait()
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def _subscribe_to(http: httpx.AsyncClient, receiver: PushReceiver, host: str,
                        shop_id: str) -> str:
    keys_of = receiver.subscription()["keys"]
    answer = await http.post("/api/v1/push/subscriptions", json={
        "subscription": {"endpoint": f"http://{host}/slow", "keys": keys_of},
        "shops": [shop_id], "quiet_hours": False})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _waits_again(redis: Redis, sub_id: str, post_id: str) -> bool:
    """The alert is back in the queue, not counted as sent."""
    sent = await redis.zrange(keys.push_sent(sub_id), 0, -1)
    return (await redis.hexists(keys.push_waiting(sub_id), post_id)
            and not any(post_id.encode() in member for member in sent))


async def test_a_pusher_stopped_mid_send_finishes_it_and_the_alert_waits_again(
        redis: Redis, push_settings: Settings, receiver: PushReceiver) -> None:
    """Regression: a graceful stop (a deploy, `up` stopping) cancelled the sends under way,
    recorded as sent before their request: their alerts were lost."""
    slow = _SlowPushService()
    host = await slow.start()
    settings = push_settings.with_(push_allowed_hosts=(receiver.host, host))
    shop = await add_shop(redis, settings, "Boucherie Martin")
    try:
        async with street(redis, settings, receiver, with_pusher=False) as http:
            sub_id = await _subscribe_to(http, receiver, host, shop.id)
            async with pusher(redis, settings):
                post_id = await live_post(http, shop, redis, flash("Merguez -30 %", minutes=60))
                await asyncio.wait_for(slow.got_one.wait(), ALERT_S)
                # Leaving the block stops the pusher (its loops end within pusher_block_ms)
                # while its request waits for an answer, which comes a second later (503:
                # try later), within push_timeout_s.
                asyncio.get_running_loop().call_later(1.0, slow.answer.set)
            assert await _waits_again(redis, sub_id, post_id)
    finally:
        await slow.stop()


async def test_an_alert_to_retry_is_put_back_through_a_redis_restart(
        push_settings: Settings, receiver: PushReceiver, tmp_path: Path) -> None:
    """Regression: the push service answered 503 while Redis was down; putting the alert
    back failed once, and the alert (recorded as sent before its request) was lost."""
    server = EmbeddedServer(tmp_path / "var")
    url = await asyncio.to_thread(server.ensure_running)
    settings = push_settings.with_(redis_url=url, data_dir=tmp_path / "var")
    own = Redis.from_url(url)
    slow = _SlowPushService()
    host = await slow.start()
    settings = settings.with_(push_allowed_hosts=(receiver.host, host))
    try:
        shop = await add_shop(own, settings, "Boucherie Martin")
        async with street(own, settings, receiver, with_pusher=False) as http:
            sub_id = await _subscribe_to(http, receiver, host, shop.id)
            async with pusher(own, settings):
                post_id = await live_post(http, shop, own, flash("Merguez -30 %", minutes=60))
                await asyncio.wait_for(slow.got_one.wait(), ALERT_S)
                retries = _retries()
                pid = int((await own.info("server"))["process_id"])
                os.kill(pid, signal.SIGKILL)
                await wait_for(lambda: server.exit_status() is not None, message="Redis down")
                slow.answer.set()
                # The 503 is in: putting the alert back meets no Redis, then Redis is back.
                await wait_for(lambda: _retries() > retries, message="the 503 counted")
                await asyncio.to_thread(server.respawn)
                await wait_for(server.answers, message="Redis back")
                await wait_for(lambda: _waits_again(own, sub_id, post_id), 20,
                               "the alert waiting again")
    finally:
        await own.aclose()
        await slow.stop()
        await asyncio.to_thread(server.stop)


def _retries() -> float:
    return REGISTRY.get_sample_value("streetfeed_push_failed_total", {"reason": "retry"}) or 0.0
