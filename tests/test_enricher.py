"""Enrichers in a consumer group: nothing lost when one dies mid-batch, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

import httpx
import msgspec
from redis.asyncio import Redis

from rules.clock import SystemClock
from rules.enrich import Enriched, enrich
from rules.moderation import Policy
from runtime.settings import Settings
from schemas.posts import RawPost
from schemas.shops import ShopCreated
from storage import keys
from tests.helpers import add_shop, arrival, enricher, feed_client, send_post, wait_for, web_server
from workers.enricher import Enricher

STREET = (44.8370, -0.5735)


async def _feed_post_ids(redis: Redis, settings: Settings) -> Counter[str]:
    entries = await redis.xrange(keys.feed_stream(settings.region))
    decoded = [msgspec.json.decode(fields[b"d"]) for _, fields in entries]
    return Counter(e["id"] for e in decoded if e["type"] == "post")


async def _pending(redis: Redis, settings: Settings) -> int:
    info = await redis.xpending(keys.in_stream(settings.region), keys.ENRICHER_GROUP)
    return int(info["pending"])


async def test_consumer_dead_mid_batch_is_reclaimed_without_duplicates(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(enricher_claim_idle_ms=200, enricher_batch=10)
    shop = await add_shop(redis, settings, lat=STREET[0], lon=STREET[1])
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http, \
            feed_client(web.ws, *STREET) as client:
        ids = [(await send_post(http, shop, arrival(f"post {i}"))).json()["id"]
               for i in range(10)]
        # Consumer "a" takes the whole batch, publishes half of it and dies before XACK.
        dying = Enricher(redis, settings, SystemClock(), Policy(), name="a")
        await dying.ensure_group()
        reply = await redis.xreadgroup(keys.ENRICHER_GROUP, "a",
                                       {keys.in_stream(settings.region): ">"}, count=10)
        entries = reply[0][1]
        assert len(entries) == 10
        shop_record = msgspec.json.decode(await redis.get(keys.shop(shop.id)))
        from schemas.shops import ShopRecord
        record = msgspec.convert(shop_record, ShopRecord)
        for entry_id, fields in entries[:5]:
            raw = msgspec.json.decode(fields[b"d"], type=RawPost)
            outcome = enrich(raw, record, now=SystemClock().now(), tz=dying.tz, policy=Policy(),
                             local_km=100.0)
            assert isinstance(outcome, Enriched)
            await dying.live.publish(post_id=raw.id, source=entry_id.decode(),
                                     post_json=outcome.json, kind=outcome.kind, lat=outcome.lat,
                                     lon=outcome.lon, expires_ts=outcome.expires_ts,
                                     shop_id=raw.shop_id, raw=fields[b"d"])
        assert await _pending(redis, settings) == 10
        await client.wait_post(ids[4])
        # Consumer "b" reclaims the dead consumer's entries once they have been idle long enough.
        survivor = Enricher(redis, settings, SystemClock(), Policy(), name="b")

        async def reclaimed() -> bool:
            await survivor.reclaim()
            return await _pending(redis, settings) == 0
        await wait_for(reclaimed)
        await client.wait_post(ids[-1])
        assert client.post_ids() == ids
        assert await _feed_post_ids(redis, settings) == Counter(ids)


def _spawn_enricher(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": settings.redis_url or "",
           "STREETFEED_ENRICHER_CLAIM_IDLE_MS": "500"}
    return subprocess.Popen([sys.executable, "-m", "streetfeed.cli", "enricher"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_two_enricher_processes_one_killed_nothing_lost(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, lat=STREET[0], lon=STREET[1])
    processes = [_spawn_enricher(settings), _spawn_enricher(settings)]
    total = 600
    try:
        async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http, \
                feed_client(web.ws, *STREET, radius_m=300) as client:
            async def consumers() -> bool:
                if not await redis.exists(keys.in_stream(settings.region)):
                    return False
                groups = await redis.xinfo_groups(keys.in_stream(settings.region))
                return bool(groups) and groups[0]["consumers"] == 2
            await wait_for(consumers, 15, "two enrichers in the group")
            sem = asyncio.Semaphore(20)

            async def post(i: int) -> str:
                async with sem:
                    response = await send_post(http, shop, arrival(f"post {i}"))
                    assert response.status_code == 202
                    return str(response.json()["id"])

            posting = [asyncio.create_task(post(i)) for i in range(total)]

            async def some_published() -> bool:
                return await redis.xlen(keys.feed_stream(settings.region)) >= 50
            await wait_for(some_published, 15)
            processes[0].send_signal(signal.SIGKILL)
            processes[0].wait(5)
            ids = await asyncio.gather(*posting)

            async def all_published() -> bool:
                return sum((await _feed_post_ids(redis, settings)).values()) >= total
            await wait_for(all_published, 30, "every accepted post published")
            await wait_for(lambda: len(set(client.post_ids())) == total, 10)
            counts = await _feed_post_ids(redis, settings)
            assert set(counts) == set(ids)
            assert max(counts.values()) == 1, "a post was published twice"
            assert sorted(client.post_ids()) == sorted(ids)

            async def none_pending() -> bool:
                return await _pending(redis, settings) == 0
            await wait_for(none_pending, 15)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)


async def test_in_stream_is_trimmed_only_below_what_is_acknowledged(
        redis: Redis, settings: Settings) -> None:
    shop = await add_shop(redis, settings, lat=STREET[0], lon=STREET[1])
    # An approximate trim drops whole stream nodes (100 entries by default): one entry per
    # node, or trimming five entries could never remove anything, right or wrong.
    await redis.config_set("stream-node-max-entries", 1)
    try:
        await _trim_only_below_acknowledged(redis, settings, shop)
    finally:
        await redis.config_set("stream-node-max-entries", 100)


async def _trim_only_below_acknowledged(redis: Redis, settings: Settings,
                                        shop: ShopCreated) -> None:
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        for i in range(5):
            await send_post(http, shop, arrival(f"p{i}"))
        worker = Enricher(redis, settings, SystemClock(), Policy(), name="solo")
        await worker.ensure_group()
        # Deliver 3, acknowledge none: a trim must keep all five.
        await redis.xreadgroup(keys.ENRICHER_GROUP, "other", {keys.in_stream(settings.region): ">"},
                               count=3)
        await worker.trim()
        assert await redis.xlen(keys.in_stream(settings.region)) == 5
        async with enricher(redis, settings) as running:
            await wait_for(lambda: running.stats.published == 2)
        assert await worker.reclaim() == 0  # idle threshold not reached: nothing taken yet
        worker.settings = settings.with_(enricher_claim_idle_ms=0)
        assert await worker.reclaim() == 3
        await worker.trim()
        # All acknowledged: only the last delivered entry is kept (MINID keeps it).
        assert await redis.xlen(keys.in_stream(settings.region)) == 1
        assert await _pending(redis, settings) == 0


async def test_consumers_gone_for_a_day_with_nothing_pending_are_forgotten(
        redis: Redis, settings: Settings) -> None:
    """Every enricher restart left its consumer in the group for ever (a cold attacker
    counted five after three kills)."""
    stream = keys.in_stream(settings.region)
    worker = Enricher(redis, settings, SystemClock(), Policy(), name="solo")
    await worker.ensure_group()
    await redis.xadd(stream, {"d": b"{}"})
    for name in ("killed-with-work", "killed-idle", "at-work"):
        await redis.xgroup_createconsumer(stream, keys.ENRICHER_GROUP, name)
    assert await redis.xreadgroup(keys.ENRICHER_GROUP, "killed-with-work", {stream: ">"})
    await redis.zadd(keys.enricher_beats(settings.region), {"at-work": 1})
    await worker.trim()
    left = {c["name"].decode() for c in await redis.xinfo_consumers(stream,
                                                                      keys.ENRICHER_GROUP)}
    # Its pending post is for another to claim, not lost: kept; one beating: kept.
    assert left == {"killed-with-work", "at-work"}, left


async def _feed_ids_in_order(redis: Redis, settings: Settings) -> list[str]:
    entries = await redis.xrange(keys.feed_stream(settings.region))
    decoded = [msgspec.json.decode(fields[b"d"]) for _, fields in entries]
    return [e["id"] for e in decoded if e["type"] == "post"]


async def test_a_batch_with_bad_entries_in_the_middle(redis: Redis, settings: Settings) -> None:
    """One batch, one pipeline: an undecodable entry is parked, a post whose publish script
    fails stays pending (and is published when retried), the others are published once,
    in order, and acknowledged; the server having lost its scripts changes nothing."""
    shop = await add_shop(redis, settings, lat=STREET[0], lon=STREET[1])
    stream = keys.in_stream(settings.region)
    worker = Enricher(redis, settings, SystemClock(), Policy(), name="solo")
    await worker.ensure_group()
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        first = (await send_post(http, shop, arrival("first"))).json()["id"]
        bad = await redis.xadd(stream, {"d": b"{not json"})
        failing = (await send_post(http, shop, arrival("failing"))).json()["id"]
        last = (await send_post(http, shop, arrival("last"))).json()["id"]
    # A key of the wrong type where the post's hash goes: its script fails, alone.
    await redis.set(keys.post(settings.region, failing), "in the way")
    await redis.script_flush()
    assert await worker.step() == 4
    assert await _feed_ids_in_order(redis, settings) == [first, last]
    assert worker.stats.published == 2
    dead = await redis.xrange(keys.dead_letter_stream(settings.region))
    assert [fields[b"source"] for _, fields in dead] == [bad]
    pending = await redis.xpending_range(stream, keys.ENRICHER_GROUP, min="-", max="+",
                                         count=10)
    assert [p["message_id"] for p in pending] == [
        (await redis.xrange(stream))[2][0]]  # the failing post's entry, nothing else
    # Retried once the way is clear: published after the others, once.
    await redis.delete(keys.post(settings.region, failing))
    assert await worker.step(own_pending=True) == 1
    assert await _feed_ids_in_order(redis, settings) == [first, last, failing]
    assert await _pending(redis, settings) == 0


async def test_a_consumer_dead_between_its_pipeline_and_the_rest(
        redis: Redis, settings: Settings) -> None:
    """Each publish script acknowledges its own entry: a consumer whose pipeline got half
    its batch through leaves the other half pending, and the survivor publishes that half
    once, after the first, in order."""
    settings = settings.with_(enricher_claim_idle_ms=0)
    shop = await add_shop(redis, settings, lat=STREET[0], lon=STREET[1])
    async with web_server(settings) as web, httpx.AsyncClient(base_url=web.http) as http:
        ids = [(await send_post(http, shop, arrival(f"post {i}"))).json()["id"]
               for i in range(6)]
    dying = Enricher(redis, settings, SystemClock(), Policy(), name="a")
    await dying.ensure_group()
    reply = await redis.xreadgroup(keys.ENRICHER_GROUP, "a",
                                   {keys.in_stream(settings.region): ">"}, count=10)
    entries = reply[0][1]
    # What "a" got through before dying: the first three scripts of its pipeline.
    await dying.process(entries[:3])
    assert await _feed_ids_in_order(redis, settings) == ids[:3]
    assert await _pending(redis, settings) == 3
    survivor = Enricher(redis, settings, SystemClock(), Policy(), name="b")
    assert await survivor.reclaim() == 3
    assert await _feed_ids_in_order(redis, settings) == ids
    assert await _pending(redis, settings) == 0
    # Delivered again (a reclaim racing a slow consumer): nothing is published twice.
    await dying.process(entries)
    assert await _feed_ids_in_order(redis, settings) == ids
