"""Runs unattended: every part of `streetfeed up` killed in turn, and the service comes back
by itself while sockets are told the truth about liveness (docs/reliability.md).

Real processes, `kill -9` of the embedded server, of the enricher and scheduler children
and of the parent; real WebSocket clients that resume with their cursor like the pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from runtime.settings import Settings
from storage import keys
from tests.helpers import (
    ResumingClient,
    Service,
    add_shop,
    arrival,
    flash,
    free_port,
    send_post,
    service_env,
    wait_for,
    wait_http,
)

STREET = (44.8370, -0.5735)


def children(pid: int) -> dict[int, str]:
    """Child processes of `pid`: pid -> command line."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                found[int(child)] = cmdline.replace(b"\0", b" ").decode()
    return found


def child_running(pid: int, marker: str) -> int | None:
    return next((c for c, cmd in children(pid).items() if marker in cmd), None)


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for init counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def metrics_dir_of(pid: int) -> str:
    """The shared metrics directory a `streetfeed` process was started with."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    entry = next((v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")), None)
    assert entry is not None, sorted(v.split(b"=")[0] for v in environ)
    return entry.split(b"=", 1)[1].decode()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def embedded_env() -> dict[str, str]:
    """The README's default: no REDIS_URL, so `up` starts the data directory's server."""
    env = service_env("")
    del env["REDIS_URL"]
    return env


class Poster:
    """Posts one arrival after another through the API, keeping the ids answered 202."""

    def __init__(self, http: httpx.AsyncClient, shop: object) -> None:
        self.http = http
        self.shop = shop
        self.accepted: list[tuple[float, str]] = []
        self.statuses: list[int] = []
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                answer = await send_post(self.http, self.shop, arrival(f"arrivage {i}"))  # type: ignore[arg-type]
            except httpx.HTTPError:
                self.statuses.append(0)
            else:
                self.statuses.append(answer.status_code)
                if answer.status_code == 202:
                    self.accepted.append((time.monotonic(), answer.json()["id"]))
            # Paced like a busy street, not a flood: the point is posts across the fault.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.05)

    def accepted_after(self, moment: float) -> int:
        return sum(1 for when, _ in self.accepted if when > moment)

    async def stop(self) -> set[str]:
        self._stop.set()
        await self.task
        return {post_id for _, post_id in self.accepted}


async def test_embedded_server_killed_comes_back_and_every_accepted_post_arrives_once(
        tmp_path: Path, settings: Settings) -> None:
    data = tmp_path / "var"
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port), "--data-dir", str(data)],
                      embedded_env(), tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    client = None
    try:
        await wait_http(f"{base}/readyz", 30)
        redis = Redis.from_url(f"unix://{data}/redis.sock")
        shop = await add_shop(redis, settings, "Primeur", *STREET)
        server_pid = int((await redis.info("server"))["process_id"])
        await redis.aclose()
        client = ResumingClient(f"ws://127.0.0.1:{port}", *STREET, 500).start()
        await asyncio.wait_for(client.connected.wait(), 10)
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            poster = Poster(http, shop)
            await wait_for(lambda: len(poster.accepted) >= 10, 10, "posts before the kill")
            os.kill(server_pid, signal.SIGKILL)
            killed = time.monotonic()
            await wait_for(lambda: False in client.statuses, 10, "the socket told not live")
            told_s = time.monotonic() - killed
            await wait_for(lambda: poster.accepted_after(killed) >= 1, 15,
                           "posting again after the kill")
            back_s = time.monotonic() - killed
            await wait_for(lambda: client.statuses[-1] is True, 15, "the socket told live again")
            await wait_for(lambda: poster.accepted_after(killed) >= 10, 10, "posts after")
            accepted = await poster.stop()
            assert set(poster.statuses) <= {202, 503}, poster.statuses
            await wait_for(lambda: accepted <= set(client.post_ids), 30,
                           "every post answered 202 delivered")
            assert len(client.post_ids) == len(set(client.post_ids)), "a post came twice"
            metrics = (await http.get("/metrics")).text
        assert 'streetfeed_task_restarts_total{task="redis"} 1.0' in metrics
        print(f"FIGURES embedded kill: accepted={len(accepted)} lost=0 duplicates=0 "
              f"refused_503={poster.statuses.count(503)} told_not_live_s={told_s:.1f} "
              f"posting_again_s={back_s:.1f}")
        assert "Traceback" not in service.log()
    finally:
        if client is not None:
            await client.stop()
        assert service.terminate() == 0
    assert gone(server_pid)


async def test_enricher_and_scheduler_children_killed_are_restarted(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    shop = await add_shop(redis, settings, "Fromagerie", *STREET)
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port)],
                      service_env(settings.redis_url or ""), tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{port}"
    client = ResumingClient(f"ws://127.0.0.1:{port}", *STREET, 500)
    try:
        await wait_http(f"{base}/readyz", 30)
        await wait_for(lambda: child_running(service.pid, "cli scheduler") is not None, 10)
        client.start()
        await asyncio.wait_for(client.connected.wait(), 10)
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            enricher_pid = child_running(service.pid, "cli enricher")
            assert enricher_pid is not None
            os.kill(enricher_pid, signal.SIGKILL)
            killed = time.monotonic()
            # A post accepted while no enricher runs is published by the next one.
            answer = await send_post(http, shop, arrival("pendant la panne"))
            assert answer.status_code == 202
            await wait_for(lambda: answer.json()["id"] in client.post_ids, 15,
                           "a post published by the restarted enricher")
            print(f"FIGURES enricher kill: delivered_after_s={time.monotonic() - killed:.1f}")
            assert child_running(service.pid, "cli enricher") not in (None, enricher_pid)

            scheduler_pid = child_running(service.pid, "cli scheduler")
            assert scheduler_pid is not None
            os.kill(scheduler_pid, signal.SIGKILL)
            await wait_for(lambda: child_running(service.pid, "cli scheduler")
                           not in (None, scheduler_pid), 15, "a new scheduler")
            # Only a running scheduler expires a post at its end (an arq job).
            offer = await send_post(http, shop, flash("-50 % pour 3 secondes", minutes=0.05))
            assert offer.status_code == 202
            offer_id = offer.json()["id"]
            await wait_for(lambda: offer_id in client.post_ids, 10)

            async def expired() -> bool:
                return await redis.zscore(keys.expiry_zset(settings.region), offer_id) is None
            await wait_for(expired, 15, "the offer expired by the restarted scheduler")
            metrics = (await http.get("/metrics")).text
        assert 'streetfeed_task_restarts_total{task="enricher"} 1.0' in metrics
        assert 'streetfeed_task_restarts_total{task="scheduler"} 1.0' in metrics
    finally:
        await client.stop()
        assert service.terminate() == 0


async def test_parent_killed_leaves_nothing_behind(
        settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    service = Service(["up", "--no-demo", "--port", str(port), "--workers", "2",
                       "--data-dir", str(data)], embedded_env(), tmp_path / "up.log").start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", 30)
        await wait_for(lambda: len(children(service.pid)) == 6, 15,
                       "server, two web workers, enricher, scheduler and pusher")
        family = children(service.pid)
        # The parent sets it after it started: its children were started with it.
        enricher = next(pid for pid, cmd in family.items() if "cli enricher" in cmd)
        metrics_dir = metrics_dir_of(enricher)
        await wait_for(lambda: os.path.isdir(metrics_dir), 1, "the shared metrics directory")
    except BaseException:
        service.terminate()  # a failure before the kill must not leave a run behind
        raise
    service.kill()
    await wait_for(lambda: all(gone(pid) for pid in family), 10,
                   f"every child gone: {family}")
    await wait_for(lambda: port_free(port), 5, "nothing left on the port")
    # The next run on the same data directory starts cleanly and clears what the killed
    # one could not (its shared metrics directory).
    again = Service(["up", "--no-demo", "--port", str(port), "--data-dir", str(data)],
                    embedded_env(), tmp_path / "up2.log").start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", 30)
        await wait_for(lambda: not os.path.exists(metrics_dir), 1, "the orphan's metrics gone")
    finally:
        assert again.terminate() == 0
