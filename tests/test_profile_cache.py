"""GET /api/v1/shops/{id} from each process's cache (services.profiles, issue 19 point 4):
computed once, and every write made through another process seen by the very next GET."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import msgspec
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from rules.clock import ManualClock
from rules.expiry import end_of_local_day
from rules.shops import profile_of, profile_valid_until
from runtime.settings import Settings
from schemas.hours import OpeningOverride, ShopHours
from schemas.shops import ShopRecord
from services.shops import set_disabled
from storage import keys
from storage.live import LiveIndex
from storage.redis_conn import pubsub_client
from tests.helpers import add_shop, auth, enricher, wait_for, web_server

# Tuesday 10:00 in Paris: open until 19:00.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOURS = {"timezone": "Europe/Paris", "weekly": {
    d: [{"open": "07:00", "close": "19:00"}] for d in ("tue", "wed")}}
STREET = (44.8378, -0.5792)


async def test_every_write_through_another_process_is_seen_by_the_next_get(
        redis: Redis, settings: Settings) -> None:
    clock = ManualClock(NOW)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    async with web_server(settings, clock=clock) as writer, \
            web_server(settings, clock=clock) as reader, enricher(redis, settings, clock), \
            httpx.AsyncClient(base_url=writer.http) as a, \
            httpx.AsyncClient(base_url=reader.http) as b:
        cache = reader.state.profiles
        await wait_for(lambda: reader.state.presence.shop_changes_heard() is not None,
                       message="the reader hearing shop writes")
        path = f"/api/v1/shops/{shop.id}"

        async def profile() -> dict[str, object]:
            response = await b.get(path)
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        assert (await profile())["open_now"] is None  # no hours yet
        for _ in range(5):
            await profile()
        assert cache.computed == 1

        # Hours set through the other process.
        assert (await a.put(f"{path}/hours", headers=auth(shop), json=HOURS)).status_code == 200
        seen = await profile()
        assert (seen["open_now"], seen["next_change"]) == (
            True, {"at": "2026-11-24T18:00:00Z", "open": False})
        assert cache.computed == 2
        await profile()
        assert cache.computed == 2

        # The name, then a producer named.
        assert (await a.patch(path, headers=auth(shop), json={"name": "Primeur du marché"})
                ).status_code == 200
        assert (await profile())["name"] == "Primeur du marché"
        named = await a.post(f"{path}/producers", headers=auth(shop), json={
            "name": "Ferme des Deux Rives", "place": "Cadillac", "lat": 44.637, "lon": -0.318})
        assert named.status_code == 201, named.text
        assert [p["name"] for p in (await profile())["producers"]] == [  # type: ignore[union-attr]
            "Ferme des Deux Rives"]

        # An own opening post: "closed" from when the enricher makes it live.
        closure = await a.post(f"{path}/posts", headers=auth(shop), json={
            "kind": "opening_change", "title": "Fermeture exceptionnelle",
            "status": "closed_exceptionally", "until": "2026-11-24T13:00:00Z"})
        assert closure.status_code == 202, closure.text
        post_id = closure.json()["id"]
        await wait_for(lambda: redis.exists(keys.post("main", post_id)), message="post live")
        seen = await profile()
        assert (seen["open_now"], seen["next_change"]) == (
            False, {"at": "2026-11-24T13:00:00Z", "open": True})
        # Withdrawn: open again at once.
        assert (await a.delete(f"{path}/posts/{post_id}", headers=auth(shop))).status_code \
            in (200, 202, 204)
        assert (await profile())["open_now"] is True

        # Disabled by the operator: gone for every process.
        computed = cache.computed
        await set_disabled(redis, shop.id, True, clock, settings)
        gone = await b.get(path)
        assert (gone.status_code, gone.json()["error"]["code"]) == (404, "unknown_shop")
        await set_disabled(redis, shop.id, False, clock, settings)
        assert (await profile())["open_now"] is True
        assert cache.computed == computed + 2


async def test_a_profile_expires_when_its_opening_state_changes(
        redis: Redis, settings: Settings) -> None:
    clock = ManualClock(NOW)
    shop = await add_shop(redis, settings, "Cave", *STREET)
    async with web_server(settings, clock=clock) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        assert (await http.put(f"/api/v1/shops/{shop.id}/hours", headers=auth(shop),
                               json=HOURS)).status_code == 200
        cache = web.state.profiles
        path = f"/api/v1/shops/{shop.id}"
        await wait_for(lambda: web.state.presence.shop_changes_heard() is not None,
                       message="shop writes heard")
        assert (await http.get(path)).json()["open_now"] is True
        computed = cache.computed
        clock.set(datetime(2026, 11, 24, 17, 59, 59, tzinfo=UTC))
        assert (await http.get(path)).json()["open_now"] is True
        assert cache.computed == computed  # still true: not computed again
        clock.set(datetime(2026, 11, 24, 18, 0, 0, tzinfo=UTC))  # 19:00 in Paris
        body = (await http.get(path)).json()
        assert (body["open_now"], body["next_change"]) == (
            False, {"at": "2026-11-25T06:00:00Z", "open": True})
        assert cache.computed == computed + 1


async def test_a_lost_subscription_drops_every_cached_profile(
        redis: Redis, settings: Settings) -> None:
    """A write announced while the process could not hear it (its Pub/Sub connection cut,
    as a Redis restart does) is not hidden by what was cached before."""
    clock = ManualClock(NOW)
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    async with web_server(settings, clock=clock) as web, \
            httpx.AsyncClient(base_url=web.http) as http:
        board = web.state.presence
        await wait_for(lambda: board.shop_changes_heard() is not None,
                       message="shop writes heard")
        path = f"/api/v1/shops/{shop.id}"
        assert (await http.get(path)).json()["name"] == "Fromagerie"
        before = board.shop_changes_heard()
        # Cut the process's subscription, and write the record while nobody can hear
        # (a write of another process during the cut: its announcement is lost).
        assert await redis.client_kill_filter(_type="pubsub") >= 1
        raw = await redis.get(keys.shop(shop.id))
        assert raw is not None
        await redis.set(keys.shop(shop.id), raw.replace(b'"Fromagerie"', b'"Fromagerie Dupont"'))
        await wait_for(lambda: board.shop_changes_heard() not in (None, before), 10,
                       "the subscription back")
        assert (await http.get(path)).json()["name"] == "Fromagerie Dupont"


# --- The expiry's rules (rules.shops), directly -----------------------------------------

ZONES = ("Europe/Paris", "America/Santiago", "Australia/Lord_Howe", "Pacific/Kiritimati",
         "America/Havana", "UTC")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31),
                    timezones=st.just(UTC)), st.sampled_from(ZONES))
@examples(max_examples=300, deadline=None)
def test_a_day_ends_at_the_first_instant_of_the_next_local_date(at: datetime, zone: str) -> None:
    """Also where midnight does not exist (Santiago and Havana spring forward at 00:00)."""
    tz = ZoneInfo(zone)
    end = end_of_local_day(at, tz)
    assert end > at
    assert end.astimezone(tz).date() == at.astimezone(tz).date() + timedelta(days=1)
    assert (end - timedelta(microseconds=1)).astimezone(tz).date() == at.astimezone(tz).date()


def test_a_profile_is_true_until_its_next_change_or_an_own_post_starts_or_ends() -> None:
    record = ShopRecord(id="cave", name="Cave", category="wine", lat=44.8, lon=-0.57,
                        token_hash="0" * 64, created_at=NOW, updated_at=NOW,
                        hours=msgspec.convert(HOURS, ShopHours))
    profile = profile_of(record, ManualClock(NOW))
    assert profile_valid_until(record, profile, (), NOW) == datetime(
        2026, 11, 24, 18, tzinfo=UTC).timestamp()
    # Without hours: never, unless an own opening post starts or ends.
    bare = msgspec.structs.replace(record, hours=None)
    assert profile_valid_until(bare, profile_of(bare, ManualClock(NOW)), (), NOW) == math.inf
    later = OpeningOverride(post_id="p_1", open=True, status="open_now",
                            starts_ts=NOW.timestamp() + 60, ends_ts=NOW.timestamp() + 600)
    assert profile_valid_until(bare, profile_of(bare, ManualClock(NOW), [later]), [later],
                               NOW) == NOW.timestamp() + 60


async def test_an_own_opening_post_is_announced_from_its_script_on_a_cluster(
        cluster_redis: RedisCluster, settings: Settings) -> None:
    """The live index's scripts PUBLISH the shop id when an own opening post changes the
    shop's open state: on a cluster too, heard on whichever node a process subscribed."""
    index = LiveIndex(cluster_redis, "main", settings)
    client = await pubsub_client(cluster_redis)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(keys.shop_changes_channel())
        now = NOW.timestamp()
        override = OpeningOverride(post_id="p_opening0000000001", open=False,
                                   status="closed_exceptionally", starts_ts=now,
                                   ends_ts=now + 3600)
        assert await index.publish(
            post_id=override.post_id, source="1-0", post_json=b"{}", kind="opening_change",
            lat=44.8, lon=-0.57, expires_ts=now + 3600, shop_id="cave-1", raw=b"{}",
            opening=msgspec.json.encode(override)) is not None
        assert await index.remove(override.post_id, "withdrawn", now_ts=now + 60) is not None
        heard: list[bytes] = []

        async def both_heard() -> bool:
            # None also for the subscription's confirmation, which is skipped.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                heard.append(message["data"])
            return len(heard) >= 2

        await wait_for(both_heard, 10, "both announcements")
        assert heard == [b"cave-1", b"cave-1"]
    finally:
        await pubsub.aclose()
        await client.aclose()
