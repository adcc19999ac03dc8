"""The reconnect storm: N live feed sockets, `streetfeed web` killed and started again.

What a deploy or a crash does to a street: every socket of a gateway process drops at
once and every page comes back with its cursor, on the pages' own backoff. Measured once
per run, at the run's largest N (`python -m bench --scenarios storm --n 10000` alone):

1. `streetfeed web` (the gateway) + `streetfeed enricher` + Valkey, as the `streetfeed`
   scenario runs them, and a second `streetfeed web` that only takes the POSTs, so that
   posts keep being accepted while the gateway is down. N subscribers (the bench city's
   positions, radii and kinds) connect, in the load generator's resume mode: a socket that
   closes or fails comes back with the cursor of the last frame it received, after
   `retryDelay(attempt)` of web/static/feedclient.js (the very function, loaded from it).
2. Posts flow at a steady, modest rate (`STORM_POSTS_PER_S`) before, during and after.
3. The gateway is killed (SIGKILL) and a new one started on the same port at once (the
   enricher and Valkey stay). `resumed_s`: from the kill until every socket is live again
   on a new connection (reopened, subscribed, its replay received up to the ping that ends
   it). Per socket, its own time to resume (p50, p99), its attempts; `listening_s`: when
   the new process first accepted a connection.
4. Every client's posts over the whole run against what it should have received
   (`bench.city.Audience`): `missing`, `extra` (duplicates count as extra); `resets`
   (a `reset` is only right for a cursor beyond retention, which none is here).
5. The ceiling (`bench/servers/ceiling.py`) taking N fresh handshakes from the same load
   generator, every client at once on the same code path (held, then all opened by one
   command): `ceiling_accept_s`, from the first connect to the last socket open.

Target (bench/report.py): resumed_s <= 3 x ceiling_accept_s, missing = extra = 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import procs
from bench.city import Audience, PlannedPost, Shop, Subscriber
from bench.loadgen import LoadGen, Received
from bench.scenarios import Phase, Poster, PostPlan, create_shops
from bench.stats import percentile

# Posts a second (all shops together) before, during and after the kill: a busy street's
# afternoon, far below saturation, so that the storm, not the fan-out, is measured.
STORM_POSTS_PER_S = 5.0
# How long posts flow before the kill and after every socket resumed (s).
BEFORE_S = 3.0
AFTER_S = 3.0
QUICK_BEFORE_S = 0.5
QUICK_AFTER_S = 0.5
# Bounds of every wait (s): a run always ends.
SUBSCRIBE_LIMIT_S = 120.0
RESUME_LIMIT_S = 90.0
DELIVERY_LIMIT_S = 60.0
POLL_S = 0.02


def _now_ms() -> float:
    return time.time() * 1000.0


class SteadyPoster:
    """Posts at `rate` a second from `plan` into `phase` until stopped."""

    def __init__(self, poster: Poster, plan: PostPlan, phase: Phase, rate: float) -> None:
        self.poster = poster
        self.plan = plan
        self.phase = phase
        self.rate = rate
        self.task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(10**9):
            delay = start + i / self.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            send = asyncio.create_task(self.poster.send(self.plan.take(1)[0], self.phase))
            self.tasks.add(send)
            send.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await asyncio.gather(*self.tasks)


async def _until(loadgen: LoadGen, ok: Any, limit_s: float, what: str) -> dict[str, float]:
    deadline = time.monotonic() + limit_s
    while True:
        stats = await loadgen.stats()
        if ok(stats):
            return stats
        if time.monotonic() > deadline:
            raise RuntimeError(f"storm: {what} not reached within {limit_s:.0f} s: {stats}")
        await asyncio.sleep(POLL_S)


async def _resumed(loadgen: LoadGen, n: int, limit_s: float) -> dict[str, float]:
    """Until every socket resumed, or `limit_s`: a storm that does not drain is a result
    (how many came back, and when), not an error."""
    deadline = time.monotonic() + limit_s
    while True:
        stats = await loadgen.stats()
        if stats["resumed"] >= n or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(POLL_S)


async def _first_accept(port: int, since: float, limit_s: float) -> float:
    """Seconds from `since` (monotonic) until something accepts on `port`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(POLL_S)
            continue
        took = time.monotonic() - since
        writer.close()
        return took
    return math.nan


class RedisWatch:
    """Valkey's side of the storm: commands processed, clients connected (the most seen),
    connections refused (past `maxclients`)."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url)
        self.start: dict[str, int] = {}
        self.max_clients = 0
        self.task: asyncio.Task[None] | None = None

    async def _info(self) -> dict[str, int]:
        info = await self.redis.info()
        return {k: int(info.get(k, 0)) for k in ("total_commands_processed",
                                                 "rejected_connections",
                                                 "total_connections_received",
                                                 "connected_clients")}

    async def begin(self) -> None:
        self.start = await self._info()
        self.task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                clients = (await self._info())["connected_clients"]
                self.max_clients = max(self.max_clients, clients)
            await asyncio.sleep(0.1)

    async def end(self) -> dict[str, int]:
        if self.task is not None:
            self.task.cancel()
        now = await self._info()
        await self.redis.aclose()
        return {"redis_commands": now["total_commands_processed"]
                - self.start["total_commands_processed"],
                "redis_connections_opened": now["total_connections_received"]
                - self.start["total_connections_received"],
                "redis_connections_refused": now["rejected_connections"]
                - self.start["rejected_connections"],
                "redis_clients_max": self.max_clients}


def _profile(web: procs.Proc, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on the new web process, from its start to the last socket resumed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(procs.VENV_BIN / "py-spy"), "record", "--pid",
                             str(web.popen.pid), "--format", "raw", "--rate", "200",
                             "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check(audience: Audience, posts: dict[str, PlannedPost],
           received: Received) -> dict[str, int]:
    """Each client's posts over the whole run against the exact expected sets."""
    missing = extra = duplicates = 0
    for post_id, post in posts.items():
        got = received.by_post.get(post_id, [])
        idx = np.fromiter((c for c, _ in got), dtype=np.int64, count=len(got))
        unique = np.unique(idx)
        duplicates += len(idx) - len(unique)
        expected = audience.recipients(post)
        missing += int(np.setdiff1d(expected, unique, assume_unique=True).size)
        extra += int(np.setdiff1d(unique, expected, assume_unique=True).size)
    unknown = sum(len(v) for pid, v in received.by_post.items() if pid not in posts)
    return {"missing": missing, "extra": extra + duplicates + unknown,
            "duplicates": duplicates, "unknown_posts": unknown}


async def _ceiling(n: int, workdir: Path, subscribers: list[Subscriber]) -> dict[str, Any]:
    """N fresh handshakes on the ceiling server, every client at once."""
    group = procs.start_reference("ceiling", workdir)
    loadgen = LoadGen(workdir, "raw", group.ws_base, "/", False, subscribers,
                      concurrency=0, resume=True, hold=True)
    try:
        await loadgen.start()
        await _until(loadgen, lambda s: s["n"] >= n, 30, "load generators up")
        cpu0 = group.main.cpu_s()
        go = await loadgen.go()
        await _until(loadgen, lambda s: s["subscribed"] >= n, RESUME_LIMIT_S,
                     "every ceiling socket open")
        cpu = group.main.cpu_s() - cpu0
        live_at, _open_at, tries = await loadgen.storm()
        stats = await loadgen.stats()
        took = [t - go for t in live_at if t > 0]
        return {"ceiling_accept_s": max(took) / 1000.0,
                "ceiling_p50_s": percentile(sorted(took), 50) / 1000.0,
                "ceiling_cpu_s": round(cpu, 3),
                "ceiling_connect_errors": int(stats["connect_errors"]),
                "ceiling_open_timeouts": int(stats["open_timeouts"]),
                "ceiling_attempts_max": max(tries, default=0)}
    finally:
        with contextlib.suppress(Exception):
            await loadgen.close()
        group.stop()


async def run_storm(n: int, workdir: Path, valkey: procs.Valkey,
                    subscribers: list[Subscriber], shops: list[Shop], audience: Audience,
                    seed: int, *, quick: bool, profile_dir: Path | None = None
                    ) -> dict[str, Any]:
    """The storm at `n` sockets, then the ceiling's accept time; the results' `storm`."""
    workdir = workdir / f"storm-n{n}"
    workdir.mkdir(parents=True, exist_ok=True)
    subscribers = subscribers[:n]
    out: dict[str, Any] = {"sockets": n, "posts_per_s": STORM_POSTS_PER_S}
    valkey.flush()
    env = procs.streetfeed_env(workdir, valkey)
    api_port = procs.free_port()
    # Started first, so that it gets ready while the others start.
    api = procs.spawn_web(workdir, env, "storm-api", api_port)
    try:
        tokens = await create_shops(valkey.url, shops)
        group = procs.start_streetfeed(workdir, valkey, use_index=True)
    except BaseException:
        api.stop()
        raise
    port = int(group.ws_base.rsplit(":", 1)[1])
    group.others.append(api)
    poster = Poster("streetfeed", procs.ProcGroup(api, post_url=f"http://127.0.0.1:{api_port}"),
                    shops, tokens)
    loadgen = LoadGen(workdir, "raw", group.ws_base, "/ws/feed", True, subscribers,
                      concurrency=100, resume=True)
    phase = Phase("storm")
    spy: subprocess.Popen[bytes] | None = None
    steady = SteadyPoster(poster, PostPlan(len(shops), seed), phase, STORM_POSTS_PER_S)
    try:
        procs.wait_ready(api_port, group, "the storm's API web process")
        t0 = time.monotonic()
        await loadgen.start()
        await _until(loadgen, lambda s: s["subscribed"] >= n, SUBSCRIBE_LIMIT_S,
                     "every socket subscribed")
        out["connect_s"] = round(time.monotonic() - t0, 2)
        steady.start()
        await asyncio.sleep(QUICK_BEFORE_S if quick else BEFORE_S)
        group.check_alive()
        others0 = {p.name: p.cpu_s() for p in (*group.others, *group.shared) if p is not api}
        watch = RedisWatch(valkey.url)
        await watch.begin()
        killed_ms = _now_ms()
        await loadgen.mark(killed_ms)
        killed = time.monotonic()
        group.main.popen.kill()
        group.main.popen.wait(5)
        web = procs.spawn_web(workdir, env, "streetfeed-web-2", port)
        group.main = web
        if profile_dir is not None:
            spy = _profile(web, profile_dir / f"storm-n{n}.txt")
        listening = asyncio.create_task(_first_accept(port, killed, RESUME_LIMIT_S))
        stats = await _resumed(loadgen, n, RESUME_LIMIT_S)
        # CPU of the new process from its start to the last socket resumed (it also read
        # every module and connected to Redis: what a restart costs).
        out["cpu_s"] = round(web.cpu_s(), 3)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 30)
        out.update(await watch.end())
        out["cpu_s_others"] = {name: round(p.cpu_s() - others0[name], 3)
                               for p in (*group.others, *group.shared) if p.name in others0
                               for name in [p.name]}
        out["listening_s"] = round(await listening, 3)
        live_at, open_at, tries = await loadgen.storm()
        # A socket not live again by the limit counts as never (NaN): p50/p99 still say
        # how far the others got.
        took = sorted((t - killed_ms) / 1000.0 if t > killed_ms else math.inf
                      for t in live_at)
        out["resumed_sockets"] = int(stats["resumed"])
        out["resumed_s"] = round(took[-1], 3) if stats["resumed"] >= n else math.nan
        out["resume_p50_s"] = round(percentile(took, 50), 3)
        out["resume_p99_s"] = round(percentile(took, 99), 3)
        # Where each socket's time went: waiting for its handshake's answer, then from the
        # answer to the ping that ends its replay (admission, replay read and writes).
        answered = sorted((o - killed_ms) / 1000.0 for o in open_at if o > killed_ms)
        setup = sorted((t - o) / 1000.0 for t, o in zip(live_at, open_at, strict=True)
                       if t > killed_ms and o > killed_ms)
        out["answered_p50_s"] = round(percentile(answered, 50), 3)
        out["answered_p99_s"] = round(percentile(answered, 99), 3)
        out["setup_p50_s"] = round(percentile(setup, 50), 3)
        out["setup_p99_s"] = round(percentile(setup, 99), 3)
        out["attempts_mean"] = round(sum(tries) / n, 2)
        out["attempts_max"] = max(tries)
        out["connect_errors"] = int(stats["connect_errors"])
        out["open_timeouts"] = int(stats["open_timeouts"])
        await asyncio.sleep(QUICK_AFTER_S if quick else AFTER_S)
        await steady.stop()
        group.check_alive()
        expected = sum(len(audience.recipients(p)) for p in phase.posts.values())
        stats = await loadgen.wait_kept(expected, stall_s=8.0, limit_s=DELIVERY_LIMIT_S)
        out["resets"] = int(stats["resets"])
        out["sockets_lost_after_resume"] = int(stats["live_lost"]) - n
        out["posts_sent"] = len(phase.posts)
        out["post_errors"] = phase.errors
        received = await loadgen.dump()
        out.update(_check(audience, phase.posts, received))
        out["deliveries"] = received.records
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        with contextlib.suppress(Exception):
            await steady.stop()
        with contextlib.suppress(Exception):
            await loadgen.close()
        await poster.close()
        group.stop()
    out.update(await _ceiling(n, workdir, subscribers))
    out["resumed_over_ceiling"] = (out["resumed_s"] / out["ceiling_accept_s"]
                                   if out.get("ceiling_accept_s") else math.nan)
    if out.get("resumed_sockets", n) < n:
        out["note"] = (f"only {out['resumed_sockets']:,} of {n:,} sockets resumed within "
                       f"{RESUME_LIMIT_S:.0f} s")
    return out
