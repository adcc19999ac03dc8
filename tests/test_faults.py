"""Faults survived, with real processes: `kill -9` where it says kill.

Each test starts the `streetfeed` process kinds as the Procfile would and
breaks one part. See docs/reliability.md for the table these tests fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import httpx
import msgspec
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from rules.clock import SystemClock
from rules.geo import haversine_m
from runtime.settings import Settings
from schemas.posts import NewArrivalIn, RawPost
from storage import keys
from storage.inbox import Inbox
from tests.helpers import (
    OwnRedis,
    ResumingClient,
    Service,
    add_shop,
    arrival,
    enricher,
    feed_client,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
)

STREET = (44.8370, -0.5735)


async def test_redis_killed_and_restarted_loses_no_accepted_post(
        own_redis: OwnRedis, tmp_path: Path, settings: Settings) -> None:
    settings = settings.with_(redis_url=own_redis.url)
    redis = Redis.from_url(own_redis.url)
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    await redis.aclose()
    port = free_port()
    # A 202 waits for the local AOF fsync (WAITAOF): what makes "accepted" survive kill -9.
    service = Service(["up", "--no-demo", "--port", str(port)],
                      service_env(own_redis.url, STREETFEED_DURABILITY="fsync"),
                      tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/readyz")
        client = ResumingClient(f"ws://127.0.0.1:{port}", *STREET, 500).start()
        await asyncio.wait_for(client.connected.wait(), 10)
        accepted: list[str] = []
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            answers = await asyncio.gather(*[send_post(http, shop, arrival(f"avant {i}"))
                                             for i in range(30)])
            assert {a.status_code for a in answers} == {202}
            accepted += [a.json()["id"] for a in answers]
            own_redis.kill()
            # Redis down: the API says so (503 + Retry-After), never 500.
            down = await send_post(http, shop, arrival("pendant"))
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"].isdigit()
            assert down.json()["error"]["code"] == "redis_unavailable"
            assert (await http.get("/readyz")).status_code == 503
            # The socket stays open meanwhile (or closes resumable); then everything resumes
            # by itself once Redis is back from its AOF.
            own_redis.start()
            await wait_http(f"{base}/readyz", 30)
            after = await send_post(http, shop, arrival("après"))
            assert after.status_code == 202
            accepted.append(after.json()["id"])
        await wait_for(lambda: set(accepted) <= set(client.post_ids), 30,
                       "every accepted post delivered after the restart")
        assert len(client.post_ids) == len(set(client.post_ids)), "duplicates"
        print(f"FIGURES redis kill: accepted={len(accepted)} delivered={len(client.post_ids)} "
              f"lost=0 reconnects={client.connections - 1}")
        await client.stop()
        assert "Traceback" not in service.log()
    finally:
        assert service.terminate() == 0


def _expected(post_positions: dict[str, tuple[float, float]], lat: float, lon: float,
              radius: float) -> set[str]:
    return {pid for pid, (plat, plon) in post_positions.items()
            if haversine_m(lat, lon, plat, plon) <= radius}


async def test_gateway_killed_with_1000_sockets_resume_without_gap_or_duplicate(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shops = [await add_shop(redis, settings, f"Shop {i}", STREET[0] + (i - 2) * 0.002, STREET[1])
             for i in range(5)]  # along 1 km of street
    gateway_port, api_port = free_port(), free_port()
    env = service_env(settings.redis_url or "")
    gateway = Service(["web", "--port", str(gateway_port)], env, tmp_path / "gw1.log").start()
    api = Service(["web", "--port", str(api_port)], env, tmp_path / "api.log").start()
    positions: dict[str, tuple[float, float]] = {}
    clients: list[ResumingClient] = []
    try:
        await wait_http(f"http://127.0.0.1:{gateway_port}/readyz")
        await wait_http(f"http://127.0.0.1:{api_port}/readyz")
        async with enricher(redis, settings), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            for i in range(1000):
                lat = STREET[0] + ((i % 50) - 25) * 0.0001  # 500 m of street
                clients.append(ResumingClient(f"ws://127.0.0.1:{gateway_port}", lat, STREET[1],
                                              200 + (i % 9) * 100).start())
            await wait_for(lambda: all(c.connected.is_set() for c in clients), 60,
                           "1000 sockets subscribed")

            async def post_round(tag: str) -> None:
                for i, shop in enumerate(shops):
                    answer = await send_post(http, shop, arrival(f"{tag} {i}"))
                    assert answer.status_code == 202
                    positions[answer.json()["id"]] = (STREET[0] + (i - 2) * 0.002, STREET[1])

            await post_round("before")
            await wait_for(lambda: all(set(c.post_ids) == _expected(positions, c.lat, c.lon,
                                                                     c.radius_m)
                                       for c in clients), 30, "first round delivered")
            gateway.kill()
            await post_round("while down")  # accepted by the other web process
            gateway = Service(["web", "--port", str(gateway_port)], env,
                              tmp_path / "gw2.log").start()
            started = time.monotonic()
            await wait_for(lambda: all(c.connections >= 2 and c.connected.is_set()
                                       for c in clients), 60, "every socket back")
            resume_s = time.monotonic() - started
            await post_round("after")
            await wait_for(lambda: all(set(c.post_ids) == _expected(positions, c.lat, c.lon,
                                                                     c.radius_m)
                                       for c in clients), 30, "every post, once, everywhere")
            for c in clients:
                assert len(c.post_ids) == len(set(c.post_ids)), "a duplicate"
                assert c.resets == 0, "a resumable cursor was treated as lost"
            assert resume_s < 60
            print(f"FIGURES gateway kill: sockets={len(clients)} posts={len(positions)} "
                  f"deliveries={sum(len(c.post_ids) for c in clients)} "
                  f"resume_s={resume_s:.2f} duplicates=0 missing=0")
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
        gateway.terminate()
        api.terminate()


async def test_sigterm_finishes_in_flight_posts_and_says_going_away(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Cave", *STREET)
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port)],
                      service_env(settings.redis_url or ""), tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/readyz")
    async with feed_client(f"ws://127.0.0.1:{port}", *STREET) as client, \
            httpx.AsyncClient(base_url=base, timeout=10) as http:
        posting = [asyncio.create_task(send_post(http, shop, arrival(f"p{i}")))
                   for i in range(40)]
        await wait_for(lambda: len(client.posts()) >= 5, 10)
        service.process.send_signal(15)  # type: ignore[union-attr]
        results = await asyncio.gather(*posting, return_exceptions=True)
        await client.closed.wait()
        assert client.close_code == 1001
        assert client.ws.close_reason and "cursor" in client.ws.close_reason
    assert service.terminate() == 0
    accepted = [r.json()["id"] for r in results
                if isinstance(r, httpx.Response) and r.status_code == 202]
    print(f"FIGURES sigterm: in_flight={len(results)} accepted={len(accepted)} close=1001")
    assert accepted, "some posts were answered before the stop"
    # In flight means answered: 202, or 503 once stopping, or refused before it began.
    cut = [r for r in results if isinstance(r, (httpx.ReadError, httpx.RemoteProtocolError))]
    assert not cut, cut
    # Everything answered 202 is in the `in` stream, and published once an enricher runs.
    async with enricher(redis, settings):
        async def all_published() -> bool:
            entries = await redis.xrange(keys.feed_stream(settings.region))
            ids = {msgspec.json.decode(f[b"d"])["id"] for _, f in entries}
            return set(accepted) <= ids
        await wait_for(all_published, 15)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_stalled_client_is_dropped_and_memory_stays_bounded(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    from tests.test_gateway import _big_post, _stalled_client

    port = free_port()
    service = Service(["web", "--port", str(port)], service_env(settings.redis_url or ""),
                      tmp_path / "web.log").start()
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/readyz")
    query = f"lat={STREET[0]}&lon={STREET[1]}&radius_m=500"
    async with feed_client(f"ws://127.0.0.1:{port}", *STREET) as healthy:
        with contextlib.closing(await _stalled_client(port, query)):
            baseline = _rss_kib(service.pid)
            peak = baseline
            total = 400  # 400 x 60 KB = 24 MB sent to each subscriber
            latencies = []
            for i in range(total):
                sent = time.monotonic()
                await redis.xadd(keys.feed_stream(settings.region), {"d": _big_post(i)})
                await wait_for(lambda i=i: len(healthy.posts()) > i, 5)
                latencies.append(time.monotonic() - sent)
                peak = max(peak, _rss_kib(service.pid))
            async with httpx.AsyncClient(base_url=base) as http:
                page = (await http.get("/metrics")).text
            assert "streetfeed_dropped_slow_sockets_total 1.0" in page
    service.terminate()
    growth_mib = (peak - baseline) / 1024
    assert growth_mib < 40, f"RSS grew {growth_mib:.1f} MiB while a client stalled"
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"FIGURES stalled client: sent_mb={total * 60 / 1000:.0f} "
          f"rss_growth_mib={growth_mib:.1f} healthy_p99_ms={p99 * 1000:.1f}")
    assert p99 < 0.5


async def test_poison_entry_goes_to_dead_letters_without_blocking(
        redis: Redis, settings: Settings) -> None:
    settings = settings.with_(enricher_claim_idle_ms=50, enricher_max_attempts=3)
    shop = await add_shop(redis, settings, "Librairie", *STREET)
    # A shop record that can no longer be read: every post of it fails enrichment.
    await redis.set(keys.shop("broken-shop"), b"{not json")
    body = NewArrivalIn(title="x")
    poison = RawPost(id="p_poisonpoisonpois", shop_id="broken-shop",
                     accepted_at=SystemClock().now(), body=body)
    behind = RawPost(id="p_behindbehindbehi", shop_id=shop.id, accepted_at=SystemClock().now(),
                     body=body)
    dead_before = _dead_letters_metric()
    inbox = Inbox(redis, settings.region, settings)
    await inbox.append(poison)
    await inbox.append(behind)
    async with enricher(redis, settings) as worker:
        await wait_for(lambda: worker.stats.published == 1, 10, "the entry behind published")

        async def parked() -> bool:
            return await redis.xlen(keys.dead_letter_stream(settings.region)) == 1
        await wait_for(parked, 20, "poison in the dead-letter stream")
        info = await redis.xpending(keys.in_stream(settings.region), keys.ENRICHER_GROUP)
        assert info["pending"] == 0
    dead = await redis.xrange(keys.dead_letter_stream(settings.region))
    assert json.loads(dead[0][1][b"d"])["id"] == "p_poisonpoisonpois"
    assert b"failed" in dead[0][1][b"reason"]
    assert _dead_letters_metric() == dead_before + 1


def _dead_letters_metric() -> float:
    return REGISTRY.get_sample_value("streetfeed_dead_letters_total") or 0.0
