"""What a 202 promises when a shard has lost its replica (STREETFEED_DURABILITY).

A master of a real 3+3 Valkey Cluster is killed; its replica takes over with no
replica of its own. `replica` refuses posts to that shard (503 `not_durable`),
`replica-preferred` accepts them on the master's AOF fsync; both say why on
/readyz and count it in /metrics. The killed node then rejoins as a replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from rules.errors import ConfigError
from runtime.settings import Settings, load_settings
from storage import keys
from tests.cluster import Cluster, two_regions
from tests.helpers import (
    ResumingClient,
    Service,
    add_shop,
    arrival,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
    web_server,
)


def test_durability_setting_accepts_replica_preferred_and_names_the_choices() -> None:
    for mode in ("aof", "fsync", "replica", "replica-preferred"):
        assert load_settings({"STREETFEED_DURABILITY": mode}).durability == mode
    with pytest.raises(ConfigError) as refused:
        load_settings({"STREETFEED_DURABILITY": "replica_preferred"})
    message = str(refused.value)
    assert "STREETFEED_DURABILITY" in message and "'replica_preferred'" in message
    for mode in ("aof", "fsync", "replica", "replica-preferred"):
        assert mode in message


def _sample(mode: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("streetfeed_durability_degraded_total",
                                     {"mode": mode, "outcome": outcome}) or 0.0


async def test_a_server_without_replica(redis: Redis, settings: Settings) -> None:
    """A lone server (no cluster) is a shard that never has a replica."""
    shop = await add_shop(redis, settings, "Primeur", 44.8370, -0.5735)
    strict = settings.with_(durability="replica", durability_timeout_ms=200)
    refused_before = _sample("replica", "refused")
    async with web_server(strict) as web, httpx.AsyncClient(base_url=web.http) as http:
        for title in ("first: WAIT times out", "then: known, refused before writing"):
            answer = await send_post(http, shop, arrival(title), idempotency_key=title)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "not_durable"
            assert answer.headers["retry-after"].isdigit()
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["durability"].startswith("no replica for region main")
    assert _sample("replica", "refused") == refused_before + 2
    # Only the first refusal wrote anything (its retry with the key gets the same id).
    assert await redis.xlen(keys.in_stream("main")) == 1

    # The same timeout serves WAIT (which must time out here) and WAITAOF (which must not:
    # a loaded machine can take more than 200 ms to fsync).
    preferred = settings.with_(durability="replica-preferred", durability_timeout_ms=1000)
    fsync_before = _sample("replica-preferred", "fsync")
    async with web_server(preferred) as web, httpx.AsyncClient(base_url=web.http) as http:
        for title in ("first: WAIT times out, then WAITAOF", "then: WAITAOF at once"):
            answer = await send_post(http, shop, arrival(title))
            assert answer.status_code == 202, answer.text
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        reason = ready.json()["checks"]["durability"]
        assert reason.startswith("no replica for region main") and "AOF" in reason
    assert _sample("replica-preferred", "fsync") == fsync_before + 2
    assert await redis.xlen(keys.in_stream("main")) == 3



async def _metric(http: httpx.AsyncClient, mode: str, outcome: str) -> float:
    text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "streetfeed_durability_degraded_total"
                    and sample.labels == {"mode": mode, "outcome": outcome}):
                return sample.value
    return 0.0


async def test_a_shard_without_replica_after_failover(
        redis_cluster: Cluster, cluster_redis: RedisCluster, settings: Settings,
        tmp_path: Path) -> None:
    lost, kept, regions_env = two_regions(redis_cluster)
    lost_name, kept_name = lost.name, kept.name
    cluster_settings = settings.with_(redis_url=None, redis_cluster_url=redis_cluster.url,
                                      regions=(lost, kept), region=lost_name)
    lost_shop = await add_shop(cluster_redis, cluster_settings, "Ouest", 44.8370, -0.5750)
    kept_shop = await add_shop(cluster_redis, cluster_settings, "Est", 44.8370, -0.5650)

    def env(mode: str) -> dict[str, str]:
        env = service_env("", REDIS_CLUSTER_URL=redis_cluster.url,
                          ARQ_REDIS_URL=settings.redis_url or "",
                          STREETFEED_REGIONS=regions_env, STREETFEED_DURABILITY=mode)
        env.pop("REDIS_URL")
        return env

    strict_port, preferred_port = free_port(), free_port()
    services = [
        Service(["web", "--port", str(strict_port)], env("replica"), tmp_path / "strict.log"),
        Service(["web", "--port", str(preferred_port)], env("replica-preferred"),
                tmp_path / "preferred.log"),
        Service(["enricher"], env("replica"), tmp_path / "enricher.log")]
    for service in services:
        service.start()
    client: ResumingClient | None = None
    victim = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            strict, preferred = [await stack.enter_async_context(httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=10))
                for port in (strict_port, preferred_port)]
            for port, http in ((strict_port, strict), (preferred_port, preferred)):
                await wait_http(f"http://127.0.0.1:{port}/readyz", 30)
                ready = (await http.get("/readyz")).json()
                assert ready["checks"]["durability"] == "ok", ready
            client = ResumingClient(f"ws://127.0.0.1:{preferred_port}", 44.8370, -0.5750,
                                    300).start()
            await asyncio.wait_for(client.connected.wait(), 20)
            assert (await send_post(strict, lost_shop, arrival("avant"))).status_code == 202

            victim = redis_cluster.master_of(keys.in_stream(lost_name))
            killed_at = time.monotonic()
            victim.kill()
            await wait_for(lambda: redis_cluster.master_of(keys.in_stream(lost_name))
                           is not victim, 30, "the replica promoted")
            promoted_s = time.monotonic() - killed_at

            # `replica`: refused with the clear code while the shard has no replica
            # (503 redis_unavailable first, while the client learns the new master).
            answers: list[httpx.Response] = []

            async def refused_not_durable() -> bool:
                answers.append(await send_post(strict, lost_shop, arrival("refusé")))
                last = answers[-1]
                return last.status_code == 503 and last.json()["error"]["code"] == "not_durable"
            await wait_for(refused_not_durable, 30, "503 not_durable from `replica`")
            refused_s = time.monotonic() - killed_at
            assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
            assert answers[-1].headers["retry-after"].isdigit()
            # Known now: the next refusal is immediate (no WAIT timeout).
            started = time.monotonic()
            again = await send_post(strict, lost_shop, arrival("refusé encore"))
            assert again.json()["error"]["code"] == "not_durable"
            refused_again_s = time.monotonic() - started
            assert refused_again_s < 1.5, refused_again_s  # a WAIT would take 2 s
            # ...and /readyz says why, naming only the region that lost its replica.
            readiness: list[httpx.Response] = []

            async def strict_explains() -> bool:
                readiness.append(await strict.get("/readyz"))
                return lost_name in readiness[-1].json()["checks"]["durability"]
            await wait_for(strict_explains, 20, "/readyz of `replica` to name the region")
            assert readiness[-1].status_code == 503
            reason = readiness[-1].json()["checks"]["durability"]
            assert "no replica" in reason and kept_name not in reason, reason
            # Shards that kept their replica take posts as before.
            assert (await send_post(strict, kept_shop, arrival("est"))).status_code == 202
            assert await _metric(strict, "replica", "refused") >= 2

            # `replica-preferred`: accepted on the master's AOF fsync, and delivered.
            statuses: list[int] = []
            accepted_ids: list[str] = []

            async def accepted() -> bool:
                response = await send_post(preferred, lost_shop, arrival("accepté"))
                statuses.append(response.status_code)
                if response.status_code == 202:
                    accepted_ids.append(response.json()["id"])
                return response.status_code == 202
            await wait_for(accepted, 30, "202 from `replica-preferred`")
            assert set(statuses) <= {202, 503}, statuses
            started = time.monotonic()
            fast = await send_post(preferred, lost_shop, arrival("accepté encore"))
            assert fast.status_code == 202
            accepted_again_s = time.monotonic() - started
            assert accepted_again_s < 1.5, accepted_again_s  # fsync only, no 2 s WAIT
            accepted_ids.append(fast.json()["id"])
            await wait_for(lambda: set(accepted_ids) <= set(client.post_ids), 30,
                           "posts accepted without a replica delivered")

            async def preferred_explains() -> bool:
                response = await preferred.get("/readyz")
                return lost_name in response.json()["checks"]["durability"]
            await wait_for(preferred_explains, 20, "/readyz of `replica-preferred`")
            response = await preferred.get("/readyz")
            assert response.status_code == 200, response.text
            assert "AOF" in response.json()["checks"]["durability"]
            assert await _metric(preferred, "replica-preferred", "fsync") >= 2

            # The killed node restarts and rejoins as a replica: `replica` accepts again.
            await wait_for(redis_cluster.restored, 60, "the killed node back as a replica")
            victim = None
            rejoined_s = time.monotonic() - killed_at

            async def strict_accepts() -> bool:
                return (await send_post(strict, lost_shop, arrival("après"))).status_code == 202
            await wait_for(strict_accepts, 30, "`replica` accepting once a replica is back")

            async def strict_ready() -> bool:
                response = await strict.get("/readyz")
                return (response.status_code == 200
                        and response.json()["checks"]["durability"] == "ok")
            await wait_for(strict_ready, 20, "/readyz of `replica` ready again")
            print(f"FIGURES durability: promoted_s={promoted_s:.1f} "
                  f"not_durable_s={refused_s:.1f} refused_again_s={refused_again_s:.2f} "
                  f"preferred_202_s={accepted_again_s:.2f} rejoined_s={rejoined_s:.1f}")
    except BaseException:
        # A failure here has been rare and load-dependent: say what each process saw.
        if client is not None:
            print(f"client: connections={client.connections} posts={client.post_ids} "
                  f"statuses={client.statuses} closes={client.close_codes}")
        for service in services:
            print(f"--- {' '.join(service.args)} ---\n{service.log()[-6000:]}")
        raise
    finally:
        if client is not None:
            await client.stop()
        for service in services:
            service.terminate()
        if victim is not None:  # a failed test: leave a healthy cluster to the next ones
            redis_cluster.restore()
