"""Scale-out: several gateway processes on one port, and a real Valkey Cluster with
two regions on different shards, surviving the loss of a master."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from runtime.settings import Settings
from schemas.shops import ShopCreated
from storage import keys
from tests.cluster import Cluster, two_regions
from tests.helpers import (
    ResumingClient,
    Service,
    add_shop,
    arrival,
    free_port,
    gateways_watched,
    send_post,
    service_env,
    wait_for,
    wait_http,
)

STREET = (44.8370, -0.5735)


async def _stats(http: httpx.AsyncClient, shop: Any, radius: int) -> int:
    body = (await http.get(f"/api/v1/shops/{shop.id}/stats",
                           headers={"Authorization": f"Bearer {shop.token}"})).json()
    return next(w["count"] for w in body["watching"] if w["radius_m"] == radius)


async def test_workers_share_one_port_and_count_presence_and_reach_together(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Primeur", *STREET)
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port), "--workers", "2"],
                      service_env(settings.redis_url or ""), tmp_path / "up.log").start()
    clients: list[ResumingClient] = []
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/readyz")
        seen: set[str] = set()

        async def both_listening() -> bool:
            # A fresh connection each time: the kernel spreads them over the workers.
            async with httpx.AsyncClient() as fresh:
                seen.add((await fresh.get(f"{base}/readyz")).json()["checks"]["gateway"])
            return len(seen) == 2
        await wait_for(both_listening, 20, "both workers listening on the port")
        clients = [ResumingClient(f"ws://127.0.0.1:{port}", STREET[0] + i * 0.00001, STREET[1],
                                  300).start() for i in range(40)]
        await wait_for(lambda: all(c.connected.is_set() for c in clients), 20)

        await gateways_watched(redis, settings.region, 2)  # sockets on both processes
        async with httpx.AsyncClient(base_url=base) as http:
            async def all_counted() -> bool:
                return await _stats(http, shop, 250) == 40
            await wait_for(all_counted, 10, "presence summed over both processes")
            post_id = (await send_post(http, shop, arrival("fraises"))).json()["id"]
            await wait_for(lambda: all(post_id in c.post_ids for c in clients), 10)

            async def reached() -> bool:
                body = (await http.get(f"/api/v1/shops/{shop.id}/stats",
                                       headers={"Authorization": f"Bearer {shop.token}"})).json()
                return body["reach"].get(post_id, {}).get("phone") == 40
            await wait_for(reached, 10, "reach summed over both processes")
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
        assert service.terminate() == 0



async def test_cluster_two_regions_two_gateways_and_master_failover(
        redis_cluster: Cluster, cluster_redis: RedisCluster, settings: Settings,
        tmp_path: Path) -> None:
    west, east, regions_env = two_regions(redis_cluster)
    west_name, east_name = west.name, east.name
    # arq's queue lives on the plain server (arq is not cluster-aware).
    env = service_env("", REDIS_CLUSTER_URL=redis_cluster.url,
                      ARQ_REDIS_URL=settings.redis_url or "", STREETFEED_REGIONS=regions_env,
                      STREETFEED_DURABILITY="replica")
    env.pop("REDIS_URL")
    cluster_settings = settings.with_(redis_url=None, redis_cluster_url=redis_cluster.url,
                                      regions=(west, east), region=west_name)
    # The CLI reaches the cluster too: the west shop is registered with it.
    added = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streetfeed.cli", "shops", "add", "--name", "Ouest",
        "--category", "boulangerie", "--lat", "44.8370", "--lon", "-0.5750", env=env,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await added.communicate()
    assert added.returncode == 0
    created = json.loads(out)
    west_shop = ShopCreated(id=created["id"], token=created["token"], name="Ouest",
                            region=created["region"])
    assert west_shop.region == west_name
    east_shop = await add_shop(cluster_redis, cluster_settings, "Est", 44.8370, -0.5650)
    gw_ports = [free_port(), free_port()]
    services = [Service(["web", "--port", str(p)], env, tmp_path / f"web{i}.log").start()
                for i, p in enumerate(gw_ports)]
    services.append(Service(["enricher"], env, tmp_path / "enricher.log").start())
    services.append(Service(["scheduler"], env, tmp_path / "scheduler.log").start())
    clients: list[ResumingClient] = []
    try:
        for p in gw_ports:
            await wait_http(f"http://127.0.0.1:{p}/healthz", 30)
        # Clients on both gateways: west side, east side, and on the border.
        spots = [((44.8370, -0.5760), 300), ((44.8370, -0.5640), 300), ((44.8370, -0.5701), 800)]
        for i in range(30):
            (lat, lon), radius = spots[i % 3]
            clients.append(ResumingClient(f"ws://127.0.0.1:{gw_ports[i % 2]}", lat, lon,
                                          radius).start())
        await wait_for(lambda: all(c.connected.is_set() for c in clients), 30)
        accepted: dict[str, str] = {}  # post id -> region
        async with contextlib.AsyncExitStack() as stack:
            https = [await stack.enter_async_context(httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{p}", timeout=10)) for p in gw_ports]

            async def post(shop: Any, region: str, title: str) -> int:
                response = await send_post(https[len(accepted) % 2], shop, arrival(title))
                if response.status_code == 202:
                    accepted[response.json()["id"]] = region
                return response.status_code

            for i in range(10):
                assert await post(west_shop, west_name, f"w{i}") == 202
                assert await post(east_shop, east_name, f"e{i}") == 202
            # The regions' keys really live on different shards.
            assert (redis_cluster.master_of(keys.feed_stream(west_name)).port
                    != redis_cluster.master_of(keys.feed_stream(east_name)).port)

            shop_lon = {west_name: -0.5750, east_name: -0.5650}

            def expected(c: ResumingClient) -> set[str]:
                return {p for p, r in accepted.items() if _sees(c, shop_lon[r])}

            # The console signs in on the cluster, and its cookie speaks for the shop.
            west_shop = await _console_on_cluster(f"http://127.0.0.1:{gw_ports[0]}", west_shop,
                                                  accepted, west_name, cluster_redis)
            await wait_for(lambda: all(set(c.post_ids) == expected(c) for c in clients), 30,
                           "every client has its posts from both regions")
            # Kill the master holding the west region; posts answered 202 before must survive.
            victim = redis_cluster.master_of(keys.in_stream(west_name))
            killed_at = time.monotonic()
            victim.kill()
            # Its replica takes over; the killed node, restarted as an operator would,
            # rejoins as the new master's replica. Until a replica acknowledges them
            # (WAIT), writes to that shard are refused: a 202 keeps its promise.
            await wait_for(lambda: redis_cluster.master_of(
                keys.in_stream(west_name)) is not victim, 30, "a replica promoted")
            promoted_s = time.monotonic() - killed_at
            victim.start()
            statuses: list[int] = []

            async def accepted_again() -> bool:
                # A shopkeeper retrying: 503 (with Retry-After) until a replica takes over.
                statuses.append(await post(west_shop, west_name, f"during {len(statuses)}"))
                return statuses[-1] == 202
            await wait_for(accepted_again, 60, "writes back after failover")
            failover_s = time.monotonic() - killed_at
            assert set(statuses) <= {202, 503}, statuses
            refused = statuses.count(503)
            for i in range(5):
                assert await post(west_shop, west_name, f"after {i}") == 202
                assert await post(east_shop, east_name, f"after-e {i}") == 202
            await wait_for(lambda: all(set(c.post_ids) == expected(c) for c in clients), 60,
                           "every accepted post delivered after failover")
            resumed_s = time.monotonic() - killed_at
            for c in clients:
                assert len(c.post_ids) == len(set(c.post_ids)), "duplicate after failover"
            print(f"FIGURES failover: accepted={len(accepted)} lost=0 refused_503={refused} "
                  f"promoted_s={promoted_s:.1f} writes_back_s={failover_s:.1f} "
                  f"all_delivered_s={resumed_s:.1f}")
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
        for service in services:
            service.terminate()
        # The killed master comes back as a replica: a healthy 3+3 for the next tests.
        redis_cluster.restore()


async def _console_on_cluster(base: str, shop: ShopCreated, accepted: dict[str, str],
                              region: str, redis: RedisCluster) -> ShopCreated:
    """Sign in with the token, post with the cookie; rotating the token ends the session.
    The shop with its new token."""
    origin = {"Origin": base}
    async with httpx.AsyncClient(base_url=base, timeout=10) as console:
        signed = await console.post("/api/v1/session", json={"shop_id": shop.id,
                                                             "token": shop.token})
        assert signed.status_code == 200, signed.text
        assert (await console.get("/api/v1/session")).json()["id"] == shop.id
        # Written with its expiry, in one script (no MULTI on a cluster).
        sessions = await redis.keys("sf:session:*", target_nodes=RedisCluster.PRIMARIES)
        assert len(sessions) == 1
        assert 0 < await redis.ttl(sessions[0]) <= Settings().session_ttl_s
        posted = await console.post(f"/api/v1/shops/{shop.id}/posts",
                                    json=arrival("from the console"), headers=origin)
        assert posted.status_code == 202, posted.text
        accepted[posted.json()["id"]] = region
        rotated = await console.post(f"/api/v1/shops/{shop.id}/token", headers=origin)
        assert rotated.status_code == 200, rotated.text
        assert (await console.get("/api/v1/session")).status_code == 401
        token = rotated.json()["token"]
        again = await console.post("/api/v1/session", json={"shop_id": shop.id, "token": token})
        assert again.status_code == 200, again.text
        assert (await console.get("/api/v1/session")).json()["id"] == shop.id
        assert (await console.delete("/api/v1/session", headers=origin)).status_code == 204
        assert (await console.get("/api/v1/session")).status_code == 401
    return msgspec.structs.replace(shop, token=token)


def _sees(client: ResumingClient, shop_lon: float) -> bool:
    from rules.geo import haversine_m
    return haversine_m(client.lat, client.lon, 44.8370, shop_lon) <= client.radius_m
