"""One scenario at one N: servers up, N subscribers in, saturation, latency, correctness.

Phases, all on the same connected sockets:
1. idle: the server's RSS before and after the N sockets subscribed -> KiB per socket.
2. saturation: a pilot burst estimates the rate; a main burst sized for a few
   seconds of fan-out is posted as fast as the server accepts it (8 requests in
   flight). Deliveries/s is the clients' receive rate between the 10 % and 90 %
   quantiles of that burst's receive times (steady state, no ramp-up or tail);
   the server's CPU over the burst gives CPU-s per 100,000 deliveries.
3. latency: posts paced at a fixed delivery rate (half of Streetfeed's
   saturation in the same run); post -> receive = client receive time minus the
   post's `posted_at` (the server's accept time), same machine, same clock.
   Streetfeed only, then "busy": the same again with 50 shops' consoles open and 1,000
   profile fetches a minute (bench.busy), `busy_*` keys.
4. correctness: every client's received set against the exact expected set
   (`bench.city.Audience`): missing, extra and duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psutil

from bench import httpclient, procs
from bench.busy import BusyLoad
from bench.city import Audience, PlannedPost, Shop, Subscriber, make_posts
from bench.loadgen import LoadGen, Received
from bench.stats import percentile, window_rate, window_rate_hist

SCENARIOS = ("streetfeed", "ceiling", "broadcast", "naive", "peer", "peer_tuned")
PRODUCT = ("streetfeed", "naive")
# The python-socketio servers: slow, so their pilot burst is shorter.
PEERS = ("peer", "peer_tuned")
# Scenarios whose every socket gets every post (no filtering).
BROADCASTING = ("ceiling", "broadcast")


@dataclass
class Profile:
    """How long each phase runs (quick mode shortens them)."""

    pilot_deliveries: int = 30_000
    peer_pilot_deliveries: int = 8_000
    saturation_s: float = 5.0
    latency_s: float = 8.0
    busy_s: float = 8.0
    settle_s: float = 1.0
    stall_s: float = 8.0


# A smoke run under a minute (bench/README.md): every phase once, short.
QUICK = Profile(pilot_deliveries=3_000, peer_pilot_deliveries=1_200, saturation_s=0.8,
                latency_s=1.0, busy_s=1.0, settle_s=0.2, stall_s=3.0)


@dataclass
class RunContext:
    n: int
    rep: int
    workdir: Path
    valkey: procs.Valkey
    subscribers: list[Subscriber]
    shops: list[Shop]
    audience: Audience
    profile: Profile
    seed: int
    # Streetfeed's saturation (deliveries/s) in this N and repetition: the latency load.
    streetfeed_saturation: float | None = None
    # With a folder: py-spy samples the server process during the saturation burst.
    profile_dir: Path | None = None


@dataclass
class Phase:
    name: str
    posts: dict[str, PlannedPost] = field(default_factory=dict)  # post id -> plan
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    loadgen_cpu_s: float = 0.0
    # Whole machine's busy CPU-s and this harness's own over the phase.
    machine_busy_s: float = 0.0
    harness_cpu_s: float = 0.0
    wall_s: float = 0.0
    expected: int = 0
    # Post frames the clients received, and those they dropped (beyond their distance or
    # of a kind they did not ask for: only the peers send them).
    frames: float = 0.0
    dropped: float = 0.0

    @property
    def foreign_cores(self) -> float:
        """Cores used by work that is not the benchmark's (other processes on the machine,
        kernel time not charged to a process) over this phase: a perturbation indicator."""
        ours = sum(self.cpu.values()) + self.loadgen_cpu_s + self.harness_cpu_s
        return (self.machine_busy_s - ours) / self.wall_s if self.wall_s > 0 else math.nan


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


class Poster:
    """Sends planned posts through each server's HTTP API; records the accepted ids."""

    def __init__(self, scenario: str, group: procs.ProcGroup, shops: list[Shop],
                 tokens: dict[int, tuple[str, str]] | None) -> None:
        self.scenario = scenario
        self.shops = shops
        self.tokens = tokens
        self.client = httpclient.Client(group.post_url)
        self.post_path = urlsplit(group.post_url).path or "/"

    async def send(self, post: PlannedPost, phase: Phase) -> None:
        body = post.body()
        if self.scenario in PRODUCT:
            assert self.tokens is not None
            shop_id, token = self.tokens[post.shop]
            path = f"/api/v1/shops/{shop_id}/posts"
            headers = {"authorization": f"Bearer {token}"}
        else:
            shop = self.shops[post.shop]
            body["shop"] = {"id": f"shop-{shop.idx:04d}", "name": shop.name,
                            "category": shop.category, "lat": shop.lat, "lon": shop.lon}
            path, headers = self.post_path, {}
        try:
            status, payload = await self.client.post_json(path, body, headers)
        except httpclient.HttpError:
            phase.errors += 1
            return
        if status != 202:
            phase.errors += 1
            if phase.errors <= 3:
                phase.error_samples.append(f"{status} {payload[:200]!r}")
            return
        phase.posts[json.loads(payload)["id"]] = post

    async def burst(self, posts: list[PlannedPost], phase: Phase, in_flight: int = 8) -> None:
        queue = iter(posts)

        async def lane() -> None:
            for post in queue:
                await self.send(post, phase)

        await asyncio.gather(*(lane() for _ in range(in_flight)))

    async def paced(self, posts: list[PlannedPost], rate: float, phase: Phase) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i, post in enumerate(posts):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.send(post, phase)))
        await asyncio.gather(*tasks)

    async def close(self) -> None:
        await self.client.aclose()


class PostPlan:
    """The run's post sequence: every scenario consumes the same posts, in the same order."""

    def __init__(self, shops: int, seed: int) -> None:
        self.shops = shops
        self.seed = seed
        self.next = 0

    def take(self, count: int) -> list[PlannedPost]:
        posts = make_posts(count, self.shops, self.seed, start_seq=self.next)
        self.next += count
        return posts


async def create_shops(valkey_url: str, shops: list[Shop]) -> dict[int, tuple[str, str]]:
    """The benchmark's shops in Streetfeed's registry: shop index -> (id, token)."""
    from redis.asyncio import Redis

    from rules.clock import SystemClock
    from runtime.settings import load_settings
    from schemas.shops import NewShop
    from services.shops import create_shop

    settings = load_settings({})
    redis = Redis.from_url(valkey_url)
    try:
        tokens = {}
        for shop in shops:
            created = await create_shop(
                redis, NewShop(name=shop.name, category=shop.category, lat=shop.lat,
                               lon=shop.lon),
                region=settings.region, clock=SystemClock())
            tokens[shop.idx] = (created.id, created.token)
        return tokens
    finally:
        await redis.aclose()


def _start_profiler(ctx: RunContext, scenario: str,
                    group: procs.ProcGroup) -> subprocess.Popen[bytes]:
    assert ctx.profile_dir is not None
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    out = ctx.profile_dir / f"{scenario}-n{ctx.n}-r{ctx.rep}.txt"
    return subprocess.Popen([str(procs.VENV_BIN / "py-spy"), "record", "--pid",
                             str(group.main.popen.pid), "--format", "raw", "--rate", "200",
                             "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _stop_profiler(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    for _ in range(200):
        if spy.poll() is not None:
            return
        await asyncio.sleep(0.05)
    spy.kill()


def _deliveries_per_post(scenario: str, ctx: RunContext, posts: list[PlannedPost]) -> float:
    if scenario in BROADCASTING:
        return float(ctx.n)
    return max(1.0, ctx.audience.mean_recipients(posts))


def _expected(scenario: str, ctx: RunContext, posts: list[PlannedPost]) -> int:
    if scenario in BROADCASTING:
        return ctx.n * len(posts)
    return sum(len(ctx.audience.recipients(p)) for p in posts)


def _posted_ms(text: str) -> float:
    return datetime.fromisoformat(text).timestamp() * 1000.0


async def run_scenario(scenario: str, ctx: RunContext) -> dict[str, Any]:
    workdir = ctx.workdir / f"n{ctx.n}-r{ctx.rep}-{scenario}"
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"scenario": scenario, "n": ctx.n, "rep": ctx.rep}
    group, tokens, (mode, path, query) = await _start_servers(scenario, ctx, workdir)
    loadgen = LoadGen(workdir, mode, group.ws_base, path, query, ctx.subscribers)
    poster = Poster(scenario, group, ctx.shops, tokens)
    plan = PostPlan(len(ctx.shops), ctx.seed)
    runner = _PhaseRunner(scenario, ctx, group, loadgen, poster)
    try:
        result.update(await _connect(scenario, ctx, group, loadgen))
        pilot_rate, main, per_post = await _saturate(scenario, ctx, group, plan, runner)
        result.update(await _latency(ctx, group, loadgen, plan, runner, pilot_rate, main,
                                     per_post))
        if scenario == "streetfeed":
            assert tokens is not None
            result.update(await _busy(ctx, group, plan, runner, tokens,
                                      result["latency_load_deliveries_per_s"] / per_post))
        received = await loadgen.dump()
        result.update(_analyse(scenario, ctx, runner.phases, received, main))
        result["loadgen_processes"] = len(loadgen.workers)
    finally:
        with contextlib.suppress(Exception):
            await loadgen.close()
        await poster.close()
        group.stop()
    return result


async def _start_servers(scenario: str, ctx: RunContext, workdir: Path) -> tuple[
        procs.ProcGroup, dict[int, tuple[str, str]] | None, tuple[str, str, bool]]:
    """The scenario's servers; the shops' tokens (product only); how the load generator
    connects: (mode, path, position in the query)."""
    if scenario in PRODUCT:
        ctx.valkey.flush()
        tokens = await create_shops(ctx.valkey.url, ctx.shops)
        group = procs.start_streetfeed(workdir, ctx.valkey, use_index=scenario != "naive")
        return group, tokens, ("raw", "/ws/feed", True)
    if scenario == "peer":
        ctx.valkey.flush()
        return procs.start_peer(workdir, ctx.valkey), None, ("sio", "/", False)
    if scenario == "peer_tuned":
        return procs.start_peer_tuned(workdir), None, ("sio", "/", False)
    return procs.start_reference(scenario, workdir), None, ("raw", "/", False)


async def _connect(scenario: str, ctx: RunContext, group: procs.ProcGroup,
                   loadgen: LoadGen) -> dict[str, Any]:
    """1. Idle: the N sockets connected and subscribed; the server's RSS before and after."""
    prof = ctx.profile
    out: dict[str, Any] = {}
    await asyncio.sleep(prof.settle_s)
    rss_before = group.main.rss_kib()
    t0 = time.monotonic()
    await loadgen.start()
    # A socket.io handshake and subscription cost peer_tuned 4 ms of CPU per client on a
    # busy machine (it joins ~113 rooms each): 10,000 took 109 s there.
    await loadgen.wait_subscribed(timeout=60 + ctx.n / (50 if scenario in PEERS else 100))
    out["connect_s"] = round(time.monotonic() - t0, 2)
    await asyncio.sleep(prof.settle_s)
    group.check_alive()
    rss_after = group.main.rss_kib()
    out["rss_kib_before"] = round(rss_before)
    out["rss_kib_idle"] = round(rss_after)
    out["rss_kib_per_socket"] = (rss_after - rss_before) / ctx.n
    return out


class _PhaseRunner:
    """Runs the phases on the same sockets; the deliveries kept so far tell where each
    phase's own deliveries end."""

    def __init__(self, scenario: str, ctx: RunContext, group: procs.ProcGroup,
                 loadgen: LoadGen, poster: Poster) -> None:
        self.scenario = scenario
        self.ctx = ctx
        self.group = group
        self.loadgen = loadgen
        self.poster = poster
        self.kept_so_far = 0.0
        self.frames_so_far = 0.0
        self.dropped_so_far = 0.0
        self.phases: list[Phase] = []

    async def run(self, phase: Phase, posts: list[PlannedPost], rate: float | None) -> float:
        """Post, wait for every expected delivery; the rough rate seen (deliveries/s)."""
        ctx, group, loadgen = self.ctx, self.group, self.loadgen
        spy = (_start_profiler(ctx, self.scenario, group) if phase.name == "saturation"
               and ctx.profile_dir is not None else None)
        phase.cpu = group.cpu()
        lg_cpu = loadgen.cpu_s()
        busy, own, wall = _machine_busy_s(), _own_cpu_s(), time.monotonic()
        phase.started_ms = time.time() * 1000.0
        if rate is None:
            await self.poster.burst(posts, phase)
        else:
            await self.poster.paced(posts, rate, phase)
        phase.expected = _expected(self.scenario, ctx, list(phase.posts.values()))
        stats = await loadgen.wait_kept(self.kept_so_far + phase.expected, ctx.profile.stall_s,
                                        limit_s=120)
        after = group.cpu()
        if spy is not None:
            await _stop_profiler(spy)
        phase.cpu = {k: after[k] - v for k, v in phase.cpu.items()}
        phase.loadgen_cpu_s = loadgen.cpu_s() - lg_cpu
        phase.machine_busy_s = _machine_busy_s() - busy
        phase.harness_cpu_s = _own_cpu_s() - own
        phase.wall_s = time.monotonic() - wall
        got = stats["kept"] - self.kept_so_far
        self.kept_so_far = stats["kept"]
        phase.frames = stats["frames"] - self.frames_so_far
        phase.dropped = stats["dropped"] - self.dropped_so_far
        self.frames_so_far, self.dropped_so_far = stats["frames"], stats["dropped"]
        self.phases.append(phase)
        span = (stats["last"] - phase.started_ms) / 1000.0
        return got / span if span > 0 else math.nan


async def _saturate(scenario: str, ctx: RunContext, group: procs.ProcGroup, plan: PostPlan,
                    runner: _PhaseRunner) -> tuple[float, Phase, float]:
    """2. Saturation: pilot, then a burst sized for `saturation_s` seconds. Returns the
    pilot's rate, the burst's phase and the deliveries per post."""
    prof = ctx.profile
    pilot_target = prof.peer_pilot_deliveries if scenario in PEERS else max(
        prof.pilot_deliveries, 3 * ctx.n)
    # Deliveries per post, from a sample of posts drawn like the plan's.
    per_post = _deliveries_per_post(scenario, ctx,
                                    make_posts(500, len(ctx.shops), ctx.seed + 99))
    pilot_posts = plan.take(max(2, math.ceil(pilot_target / per_post)))
    pilot_rate = await runner.run(Phase("pilot"), pilot_posts, None)
    group.check_alive()
    main_count = max(5, min(20_000, math.ceil(pilot_rate * prof.saturation_s / per_post)))
    main = Phase("saturation")
    await runner.run(main, plan.take(main_count), None)
    group.check_alive()
    return pilot_rate, main, per_post


async def _latency(ctx: RunContext, group: procs.ProcGroup, loadgen: LoadGen, plan: PostPlan,
                   runner: _PhaseRunner, pilot_rate: float, main: Phase,
                   per_post: float) -> dict[str, Any]:
    """3. Latency at a fixed delivery rate: half of Streetfeed's saturation."""
    out: dict[str, Any] = {}
    saturation = window_rate_hist(await loadgen.histogram(main.started_ms))
    out["deliveries_per_s_pilot"] = pilot_rate
    out["deliveries_per_s_live"] = saturation
    load = (ctx.streetfeed_saturation or saturation) / 2
    overloaded = load > 0.8 * saturation
    if overloaded:
        # Beyond what it can carry, latency only measures the backlog: measure it at
        # half of its own saturation instead, and say so.
        load = saturation / 2
    out["latency_load_deliveries_per_s"] = load
    out["latency_overloaded"] = overloaded
    post_rate = load / per_post
    latency_posts = plan.take(max(5, math.ceil(post_rate * ctx.profile.latency_s)))
    await runner.run(Phase("latency"), latency_posts, post_rate)
    group.check_alive()
    return out


async def _busy(ctx: RunContext, group: procs.ProcGroup, plan: PostPlan, runner: _PhaseRunner,
                tokens: dict[int, tuple[str, str]], post_rate: float) -> dict[str, Any]:
    """3b. The latency phase again, at the same rate, with consoles open and profiles
    fetched (bench.busy)."""
    posts = plan.take(max(5, math.ceil(post_rate * ctx.profile.busy_s)))
    busy = BusyLoad(group.ws_base, group.post_url, tokens)
    t0 = time.monotonic()
    try:
        await busy.open(posts)
        busy.start()
        await runner.run(Phase("busy"), posts, post_rate)
        out = await busy.stop()
    finally:
        await busy.close()
    out["busy_wall_s"] = round(time.monotonic() - t0, 2)
    group.check_alive()
    return out


def _analyse(scenario: str, ctx: RunContext, phases: list[Phase], received: Received,
             saturation: Phase) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plan_of: dict[str, tuple[PlannedPost, Phase]] = {}
    for phase in phases:
        for post_id, post in phase.posts.items():
            plan_of[post_id] = (post, phase)
    everyone = np.arange(ctx.n, dtype=np.int64)
    missing = extra = duplicates = 0
    times: dict[str, list[float]] = {p.name: [] for p in phases}
    latencies: dict[str, list[float]] = {p.name: [] for p in phases}
    for post_id, (post, phase) in plan_of.items():
        got = received.by_post.get(post_id, [])
        expected = everyone if scenario in BROADCASTING else ctx.audience.recipients(post)
        idx = np.fromiter((c for c, _ in got), dtype=np.int64, count=len(got))
        unique = np.unique(idx)
        duplicates += len(idx) - len(unique)
        missing += int(np.setdiff1d(expected, unique, assume_unique=True).size)
        extra += int(np.setdiff1d(unique, expected, assume_unique=True).size)
        if got:
            posted = _posted_ms(received.posted_at[post_id])
            ts = [t for _, t in got]
            times[phase.name].extend(ts)
            latencies[phase.name].extend(t - posted for t in ts)
    unknown = {pid: len(v) for pid, v in received.by_post.items() if pid not in plan_of}
    extra += sum(unknown.values())
    out.update(missing=missing, extra=extra, duplicates=duplicates,
               posts_sent=len(plan_of), post_errors=sum(p.errors for p in phases),
               post_error_samples=[e for p in phases for e in p.error_samples],
               deliveries_total=received.records)

    sat_times = times[saturation.name]
    out["deliveries_per_s"] = window_rate(sat_times)
    if sat_times:
        span = (max(sat_times) - saturation.started_ms) / 1000.0
        out["deliveries_per_s_wall"] = len(sat_times) / span if span > 0 else math.nan
    out["saturation_posts"] = len(saturation.posts)
    out["saturation_deliveries"] = len(sat_times)
    delivered = max(1, len(sat_times))
    out["cpu_s_per_100k"] = saturation.cpu[_main_name(scenario)] / delivered * 1e5
    # Every server process of the scenario (Streetfeed: web, enricher, Valkey; the peer:
    # uvicorn and the Valkey of its Redis manager; the others: their one process).
    out["cpu_s_per_100k_all"] = sum(saturation.cpu.values()) / delivered * 1e5
    out["cpu_s_per_100k_all_server"] = out["cpu_s_per_100k_all"]  # its name before issue 19
    out["cpu_s_saturation"] = {k: round(v, 3) for k, v in saturation.cpu.items()}
    if sat_times:
        # Share of one core each process used over the burst (1.0 = one core busy).
        span = (max(sat_times) - saturation.started_ms) / 1000.0
        out["cpu_util_saturation"] = {k: round(v / span, 2) for k, v in saturation.cpu.items()}
        out["loadgen_cpu_util_saturation"] = round(saturation.loadgen_cpu_s / span, 2)
        out["harness_cpu_util_saturation"] = round(saturation.harness_cpu_s / span, 2)
        out["machine_busy_cores_saturation"] = round(saturation.machine_busy_s / span, 2)
    # Busy CPU that none of the benchmark's processes accounts for (other work on the
    # machine, kernel time): a perturbation to report, not to subtract.
    out["foreign_cores"] = {p.name: round(p.foreign_cores, 2) for p in phases}
    out["loadgen_cpu_s_per_100k"] = saturation.loadgen_cpu_s / delivered * 1e5
    # Frames the server wrote per useful delivery over the burst (1 unless clients filter).
    out["frames_per_delivery"] = saturation.frames / max(1.0, saturation.frames
                                                         - saturation.dropped)
    out["frames_dropped"] = int(sum(p.dropped for p in phases))
    sat_lat = sorted(latencies[saturation.name])
    out["saturation_p50_ms"] = percentile(sat_lat, 50)
    out["saturation_p99_ms"] = percentile(sat_lat, 99)

    lat = sorted(latencies["latency"])
    out["p50_ms"] = percentile(lat, 50)
    out["p95_ms"] = percentile(lat, 95)
    out["p99_ms"] = percentile(lat, 99)
    out["max_ms"] = lat[-1] if lat else math.nan
    # A stall (GC, a ping to every socket, another process) shows as a cluster of late
    # deliveries: their share, to tell a shifted distribution from a stall.
    out["latency_over_100ms_share"] = (sum(1 for v in lat if v > 100.0) / len(lat)
                                       if lat else math.nan)
    out["latency_samples"] = len(lat)
    if "busy" in latencies:
        busy = sorted(latencies["busy"])
        out["busy_p50_ms"] = percentile(busy, 50)
        out["busy_p95_ms"] = percentile(busy, 95)
        out["busy_p99_ms"] = percentile(busy, 99)
        out["busy_samples"] = len(busy)
    latency_phase = next(p for p in phases if p.name == "latency")
    lat_times = times["latency"]
    if lat_times:
        span = (max(lat_times) - latency_phase.started_ms) / 1000.0
        out["latency_load_measured_per_s"] = len(lat_times) / span if span > 0 else math.nan
    return out


def _main_name(scenario: str) -> str:
    return f"{scenario}-web" if scenario in PRODUCT else scenario
