"""Capacity model: from the benchmark's per-core figures to a city and a country, by simulation.

    .venv/bin/python -m bench.capacity            # simulate, print the tables, rewrite the
                                                  # generated part of docs/capacity.md (+ plot)
    .venv/bin/python -m bench.capacity --probe    # re-measure the figures the benchmark does
                                                  # not give (PROBE below), on a local Valkey

What it does (docs/capacity.md explains the why):

1. Reads the measured figures from `bench/results/latest.json` (gateway CPU-s per 100,000
   deliveries and KiB RSS per idle socket at N = 10,000, the idle RSS of a `streetfeed web`
   process, Valkey and enricher CPU per post of the full-path benchmark).
2. Builds a city (default 200,000 phones watching at peak, 5,000 shops; the benchmark's
   density model of bench/city.py scaled up) and counts, for every shop and post kind,
   the exact recipients of a post: the real `feed.index.SubscriberIndex` for the city
   (cells, then the exact check), and a vectorised copy of the same check elsewhere,
   validated against the index on a sample.
3. Simulates the evening peak hour second by second (Poisson posting, flash-offer bursts,
   expiries and withdrawals) -> posts/s, deliveries/s, recipients per post.
4. Adds what else a socket costs, counted from the code: keepalive pings, snapshots at
   each (re)connection and each `subscribe` move, presence flushes, shop-console polls,
   shop-profile fetches -> gateway cores, processes and memory; and what the API processes
   answering consoles pay to hear every gateway's presence report (Pub/Sub) -> API processes.
5. Counts the Redis commands of each event from the code (ingest, enricher, readers,
   snapshots, presence, reach, rate limits, scheduler) -> ops/s and Valkey CPU per region,
   memory per region, shards (one region = one hash slot = one shard).
6. Repeats it for a country of 300 towns (Zipf sizes), packs towns onto gateway processes
   and regions onto shards, and runs the sensitivity variants.

Deterministic: every draw comes from a seeded numpy Generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.city import CENTRE, KIND_FILTERS, KIND_WEIGHTS, KINDS
from feed.hub import PING_SLICES
from feed.index import Subscriber, SubscriberIndex
from rules.geo import EARTH_RADIUS_M, CellGrid
from runtime.settings import Settings
from schemas.limits import PRESENCE_CELL_DEG

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "capacity.md"
PLOT = ROOT / "docs" / "capacity.png"
BEGIN = "<!-- capacity:generated:begin (python -m bench.capacity rewrites this part) -->"
END = "<!-- capacity:generated:end -->"

SETTINGS = Settings()
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0
KIB = 1024.0
GIB = 1024.0**3


def _js_const(path: str, name: str) -> float:
    """A numeric constant of the browser code (so the model follows the product)."""
    text = (ROOT / path).read_text(encoding="utf-8")
    found = re.search(rf"\b{name}\s*=\s*([0-9_.]+)", text)
    if found is None:
        raise SystemExit(f"capacity: {name} not found in {path}")
    return float(found.group(1).replace("_", ""))


# What the browser code does (read from it, not restated).
MOVE_THRESHOLD_M = _js_const("web/static/app.js", "MOVE_THRESHOLD_M")
PHONE_DEFAULT_RADIUS_M = _js_const("web/static/position.js", "DEFAULT_RADIUS_M")
SCREEN_RADIUS_M = _js_const("web/static/screen.js", "DEFAULT_RADIUS_M")
CONSOLE_POLL_S = _js_const("web/static/shop.js", "POLL_MS") / 1000.0
CONSOLE_HIDDEN_POLL_S = _js_const("web/static/shop.js", "HIDDEN_POLL_MS") / 1000.0
# feed/stats.py: StatsPublisher(interval_s=1.0), one flush per process per second.
PRESENCE_FLUSH_S = 1.0
# The scheduler's CPU per arq job (expire_post: one remove script, arq's own bookkeeping), and
# the jobs it runs per second (arq's default of 10 at a time): estimates, not measured.
ARQ_JOB_S = 0.002
ARQ_JOBS_PER_S = 1_000.0
# BENCH-NOTES: open files are capped at 20,000 per process -> 10,000 sockets per process.
SOCKETS_PER_PROCESS = 10_000

# Figures the benchmark does not measure, measured on this 2-core machine by
# `python -m bench.capacity --probe` (a local Valkey from streetfeed.embedded and one
# `streetfeed web` process, loopback only; the probe prints this dict). Re-run the probe
# and paste its output after a change to the snapshot, presence or console code.
PROBE: dict[str, float | str] = {
    "measured": "2026-11-26, median of 3 runs on this 2-core VM, quiet; presence and console "
                "poll figures 2026-11-30, median of 3 runs, VM busy with other work (that day "
                "GET measured 26 µs of Valkey CPU, not 17.75)",
    # Valkey CPU per simple command (GET) awaited alone, 16 clients at once, incl. syscalls;
    # and (reference) from one client, one at a time: every command wakes the server.
    "valkey_us_per_cmd": 17.75,
    "valkey_us_per_cmd_sequential": 29.5,
    # Snapshot script (streetfeed/live.py _SNAPSHOT), commandstats usec per call:
    # fixed + per live post within the search radius (GEOSEARCH) + per post returned (HMGET).
    "snapshot_us_fixed": 31.9,
    "snapshot_us_per_post_in_radius": 1.0613,
    "snapshot_us_per_returned": 8.505,
    # Cross-check: Valkey process CPU per socket opened where the snapshot is full (200 posts).
    "valkey_open_us_dense": 4600.0,
    # Publish and remove scripts (the post path; expiry / withdrawal), usec per call.
    "publish_us": 29.2,
    "remove_us": 49.6,
    # Presence (feed/stats.py, feed/presence.py): each gateway process PUBLISHes a
    # PresenceReport of all its cells once a second on the region's channel; every process
    # listening to the region (those answering its consoles) gets every report.
    "presence_bytes_per_cell": 18.2,           # a report's JSON bytes per (cell, count)
    "gw_presence_encode_us_per_cell": 0.1734,  # gateway CPU to build and encode a report
    "valkey_publish_us_per_cell": 0.004,       # Valkey CPU of a PUBLISH nobody listens to
    # (per report: one command, valkey_us_per_cmd) and for each listening process:
    "valkey_fanout_us_per_report_per_listener": 8.75,
    "valkey_fanout_us_per_cell_per_listener": 0.0183,
    # A listening process's CPU per report received (redis-py's get_message, the board's
    # loop: mostly per wake-up), and per cell decoded and kept (feed/presence.py _take):
    "listener_us_per_report": 352.5,
    "listener_decode_us_per_cell": 0.2593,
    # Gateway process (`streetfeed web`) CPU:
    "gw_open_ms": 1.162,         # one socket opened: handshake, rate limit, place, snapshot call
    "gw_frame_us": 12.55,        # one snapshot frame (encoded per socket) written
    "gw_move_ms": 0.627,         # one `subscribe` move, excluding its snapshot frames
    "gw_read_us": 262.1,         # one feed entry read with no recipient (XREAD, decode, lookup)
    "poll_ms": 4.989,            # one console poll (GET stats + GET posts), 7 live posts, no cells
    "poll_us_per_cell_in_memory": 3.728,  # ... plus this per presence cell it walks (every
                                         # gateway's last report of the region, in memory)
    "valkey_poll_us": 800.0,     # Valkey CPU of one console poll: reach and posts (presence is
                                 # not in Redis: a poll reads none of it there)
    "profile_ms": 0.83,          # one GET /api/v1/shops/{id}
    "post_ms": 1.262,            # one POST /api/v1/shops/{id}/posts (auth, limits, XADD)
    # Memory (MEMORY USAGE of real keys written by the real scripts):
    "live_post_bytes": 1720.0,   # post hash + GEO member + expiry member + shop-posts member
    "feed_post_entry_bytes": 669.0,       # one post entry of the region's feed stream
    "feed_tombstone_entry_bytes": 116.0,  # one expired / withdrawn entry
    "reach_bytes": 96.0,         # one post's reach hash
    # (no presence figure: Pub/Sub stores nothing, presence takes 0 bytes of Redis data)
    "shop_bytes": 450.0,
    "web_rss_kib_idle": 41100.0,  # cross-check of latest.json's rss_kib_before
}


# --- Measured figures from the benchmark -----------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What bench/results/latest.json says about Streetfeed at N sockets (streetfeed scenario)."""

    path: str
    command: str
    started: str
    n: int
    cpu_s_per_100k: float
    cpu_s_per_100k_all: float
    rss_kib_per_socket: float
    deliveries_per_s: float
    p99_ms: float
    rss_kib_base: float
    valkey_ms_per_post: float
    enricher_ms_per_post: float
    deliveries_per_post: float
    runs: int
    write_cpu_s_per_100k: float     # ceiling scenario: one pre-encoded frame per transport

    @property
    def write_s(self) -> float:
        """CPU-seconds to write one pre-encoded frame to one socket (the ceiling scenario)."""
        return self.write_cpu_s_per_100k / 100_000.0

    @property
    def delivery_s(self) -> float:
        """Gateway CPU-seconds per delivery."""
        return self.cpu_s_per_100k / 100_000.0


def load_measured(path: Path = RESULTS, n: int = 10_000) -> Measured:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"capacity: cannot read {path}: {exc} (run `python -m bench` first)"
                         ) from None
    try:
        sf = data["by_n"][str(n)]["scenarios"]["streetfeed"]
        ceiling = data["by_n"][str(n)]["scenarios"]["ceiling"]
        runs = [r for r in data["runs"] if r["scenario"] == "streetfeed" and r["n"] == n
                and r.get("saturation_posts")]
    except KeyError as exc:
        raise SystemExit(f"capacity: {path} has no streetfeed figures at N = {n} ({exc})"
                         ) from None
    if not runs:
        raise SystemExit(f"capacity: {path} has no streetfeed runs at N = {n}")

    def med(values: list[float]) -> float:
        return float(np.median(values))

    return Measured(
        path=str(path.relative_to(ROOT)), command=data["meta"].get("command", "?"),
        started=data["meta"].get("started", "?"), n=n,
        cpu_s_per_100k=sf["cpu_s_per_100k"]["median"],
        cpu_s_per_100k_all=sf["cpu_s_per_100k_all_server"]["median"],
        rss_kib_per_socket=sf["rss_kib_per_socket"]["median"],
        deliveries_per_s=sf["deliveries_per_s"]["median"],
        p99_ms=sf["p99_ms"]["median"],
        rss_kib_base=med([r["rss_kib_before"] for r in runs]),
        valkey_ms_per_post=med([1000 * r["cpu_s_saturation"]["valkey"] / r["saturation_posts"]
                                for r in runs]),
        enricher_ms_per_post=med([1000 * r["cpu_s_saturation"]["streetfeed-enricher"]
                                  / r["saturation_posts"] for r in runs]),
        deliveries_per_post=med([r["saturation_deliveries"] / r["saturation_posts"]
                                 for r in runs]),
        runs=len(runs),
        write_cpu_s_per_100k=ceiling["cpu_s_per_100k"]["median"],
    )


# --- Assumptions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A mixture of a dense core and a wider agglomeration (2-D normals), cut at `cut_m`."""

    core_share: float
    core_sigma_m: float
    wide_sigma_m: float
    cut_m: float

    def scaled(self, k: float) -> Shape:
        return Shape(self.core_share, self.core_sigma_m * k, self.wide_sigma_m * k,
                     self.cut_m * k)


# bench/city.py: make_subscribers() and make_shops() (Bordeaux, ~7 km across the agglomeration).
BENCH_WATCHERS = Shape(0.55, 1_000.0, 3_000.0, 7_000.0)
BENCH_SHOPS = Shape(0.70, 800.0, 2_500.0, 6_000.0)


@dataclass(frozen=True)
class Model:
    """Every assumption of the model, in one place (the doc prints them from here)."""

    # City.
    watchers: int = 200_000          # phones watching at the evening peak
    shops: int = 5_000
    city_scale: float = 2.0          # bench/city.py's distances x2 (a Lyon-sized agglomeration)
    # Radii of phones: the app's default and its other choices (web/static/app.js RADII_M).
    radius_mix: tuple[tuple[float, float], ...] = ((1_000.0, 0.60), (500.0, 0.25),
                                                   (250.0, 0.15))
    radius_uniform: tuple[float, float] | None = None   # (lo, hi): uniform instead of the mix
    screen_share: float = 0.20       # shops running an in-shop screen (one socket, 500 m)
    # Posting at the evening peak (18:00-20:00), per shop.
    peak_posts_per_h: float = 3.0    # once per 20 min on average
    bursts_per_h: float = 4.0        # flash-offer bursts per town per hour...
    burst_share: float = 0.05        # ...each: this share of the town's shops posts a flash offer
    burst_s: float = 60.0            # ...within this many seconds
    flash_lifetime_h: float = 2.0    # ends_at of a flash offer (the benchmark's +2 h)
    withdraw_share: float = 0.05     # posts withdrawn before they expire
    daily_posts: float = 8.0         # posts per shop per day (retention, live posts)
    day_share_by_peak: float = 0.85  # share of the day's new arrivals posted by 19:00
    hours_share: float = 0.5         # shops with opening hours (one live opening_change each)
    # Sockets.
    session_s: float = 300.0         # a phone (re)opens its socket every 5 min on average
    walking_share: float = 0.20      # phones carried by someone walking with the page open
    walk_speed_m_s: float = 1.3      # feed.geo.walking_minutes' pace
    console_share: float = 0.40      # shops with the console open at peak...
    console_visible: float = 0.50    # ...of which in a visible tab (polls every 2 s, else 10 s)
    # The console's "watching around you" walks every gateway's presence cells of the region,
    # held in memory (feed/presence.py PresenceBoard.watchers); True models a fix that walks
    # only the cells within 2 km.
    console_nearby_only: bool = False
    # API processes listening to a region's presence: 0 = any that had one of its consoles'
    # requests lately (the load balancer spreads /api/ at random); N = the load balancer
    # sends a region's console requests to N processes only (a fix).
    presence_listeners_per_region: int = 0
    # Headroom and budgets.
    gateway_max_core: float = 0.60   # a gateway process runs at <= 60 % of its core
    shard_max_core: float = 0.50     # a Valkey shard's main thread at <= 50 % of a core
    shard_max_ops: float = 50_000.0  # ... and <= 50k commands/s (incl. commands inside scripts)
    shard_max_bytes: float = 4 * GIB  # ... and <= 4 GiB of data (host RAM 2x: fork, buffers)
    region_split_overlap: float = 0.25  # extra snapshot work when a region is split (borders)
    # Country.
    towns: int = 300
    zipf_s: float = 1.0              # watchers of town r = watchers / r**s
    shops_exponent: float = 0.9      # shops of a town = shops * (its watchers share)**0.9
    min_shops: int = 20
    scale_exponent: float = 0.4      # spatial scale ~ watchers**0.4 (smaller towns: less dense)
    min_scale: float = 0.25
    # Simulation.
    seed: int = 1
    snapshot_sample: int = 3_000     # phones whose snapshot is computed exactly (per town, max)
    validate_sample: int = 60        # (shop, kind) pairs checked against SubscriberIndex

    @property
    def peak_rate_per_shop_s(self) -> float:
        return self.peak_posts_per_h / 3600.0


# --- Places ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Town:
    rank: int
    name: str
    watchers: int
    shops: int
    scale: float


@dataclass
class Population:
    """Phones and screens of one town: positions, radii and what each wants (per kind)."""

    lat: np.ndarray
    lon: np.ndarray
    radius: np.ndarray
    wants: np.ndarray      # (n, 3) bool, by KINDS
    screen: np.ndarray     # bool
    shop_lat: np.ndarray
    shop_lon: np.ndarray

    @property
    def phones(self) -> int:
        return int((~self.screen).sum())


def _points(rng: np.random.Generator, n: int, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    got = 0
    while got < n:
        m = int((n - got) * 1.2) + 16
        sigma = np.where(rng.random(m) < shape.core_share, shape.core_sigma_m, shape.wide_sigma_m)
        x = rng.standard_normal(m) * sigma
        y = rng.standard_normal(m) * sigma
        keep = x * x + y * y <= shape.cut_m * shape.cut_m
        xs.append(x[keep])
        ys.append(y[keep])
        got += int(keep.sum())
    x = np.concatenate(xs)[:n]
    y = np.concatenate(ys)[:n]
    lat = np.round(CENTRE[0] + y / M_PER_DEG_LAT, 7)
    lon = np.round(CENTRE[1] + x / (M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))), 7)
    return lat, lon


_FILTER_WANTS = np.array([[k is None or kind in k for kind in KINDS] for k, _ in KIND_FILTERS])
_FILTER_WEIGHTS = np.array([w for _, w in KIND_FILTERS])


def make_population(model: Model, town: Town) -> Population:
    rng = np.random.default_rng([model.seed, town.rank])
    lat, lon = _points(rng, town.watchers, BENCH_WATCHERS.scaled(town.scale))
    if model.radius_uniform is not None:
        radius = np.round(rng.uniform(*model.radius_uniform, town.watchers), 1)
    else:
        values = np.array([r for r, _ in model.radius_mix])
        weights = np.array([w for _, w in model.radius_mix])
        radius = rng.choice(values, town.watchers, p=weights / weights.sum())
    wants = _FILTER_WANTS[rng.choice(len(KIND_FILTERS), town.watchers,
                                     p=_FILTER_WEIGHTS / _FILTER_WEIGHTS.sum())]
    shop_lat, shop_lon = _points(rng, town.shops, BENCH_SHOPS.scaled(town.scale))
    screens = rng.random(town.shops) < model.screen_share
    n_screens = int(screens.sum())
    return Population(
        lat=np.concatenate([lat, shop_lat[screens]]),
        lon=np.concatenate([lon, shop_lon[screens]]),
        radius=np.concatenate([radius, np.full(n_screens, SCREEN_RADIUS_M)]),
        wants=np.concatenate([wants, np.ones((n_screens, 3), dtype=bool)]),
        screen=np.concatenate([np.zeros(town.watchers, dtype=bool),
                               np.ones(n_screens, dtype=bool)]),
        shop_lat=shop_lat, shop_lon=shop_lon)


# --- Who receives a post ----------------------------------------------------------------------


def count_recipients(pop: Population) -> np.ndarray:
    """(shops, 3) exact recipients of a post of each kind from each shop.

    The same test as SubscriberIndex.matching (haversine term against the subscriber's
    precomputed bound), vectorised; candidates come from square buckets as wide as the
    largest radius instead of the index's cells, so every subscriber within reach is seen.
    """
    lat_r = np.radians(pop.lat)
    lon_r = np.radians(pop.lon)
    cos_w = np.cos(lat_r)
    max_h = np.sin(np.minimum(math.pi / 2, pop.radius / EARTH_RADIUS_M / 2)) ** 2
    wants = pop.wants.astype(np.float32)
    s_lat_r = np.radians(pop.shop_lat)
    s_lon_r = np.radians(pop.shop_lon)
    s_cos = np.cos(s_lat_r)
    lat0 = math.radians(float(np.mean(pop.lat)))
    lon0 = math.radians(float(np.mean(pop.lon)))
    size = float(pop.radius.max()) * 1.02 + 10.0

    def bucket(la: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (lo - lon0) * EARTH_RADIUS_M * math.cos(lat0)
        y = (la - lat0) * EARTH_RADIUS_M
        return np.floor(x / size).astype(np.int64), np.floor(y / size).astype(np.int64)

    wx, wy = bucket(lat_r, lon_r)
    sx, sy = bucket(s_lat_r, s_lon_r)
    x_min = min(int(wx.min()), int(sx.min())) - 1
    y_min = min(int(wy.min()), int(sy.min())) - 1
    width = max(int(wx.max()), int(sx.max())) - x_min + 2
    w_key = (wx - x_min) * width + (wy - y_min)
    order = np.argsort(w_key, kind="stable")
    sorted_keys = w_key[order]
    counts = np.zeros((len(s_lat_r), 3), dtype=np.int64)
    s_key = (sx - x_min) * width + (sy - y_min)
    for key in np.unique(s_key):
        shops = np.nonzero(s_key == key)[0]
        parts = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                k = key + dx * width + dy
                lo, hi = np.searchsorted(sorted_keys, [k, k + 1])
                if hi > lo:
                    parts.append(order[lo:hi])
        if not parts:
            continue
        cand = np.concatenate(parts)
        c_lat, c_lon, c_cos, c_max = lat_r[cand], lon_r[cand], cos_w[cand], max_h[cand]
        c_wants = wants[cand]
        for start in range(0, len(shops), 64):
            sel = shops[start:start + 64]
            h = (np.sin((s_lat_r[sel, None] - c_lat[None, :]) / 2) ** 2
                 + c_cos[None, :] * s_cos[sel, None]
                 * np.sin((s_lon_r[sel, None] - c_lon[None, :]) / 2) ** 2)
            inside = (h <= c_max[None, :]).astype(np.float32)
            counts[sel] = np.rint(inside @ c_wants).astype(np.int64)
    return counts


@dataclass(frozen=True)
class IndexCheck:
    """The real SubscriberIndex on the city: agreement with the counts, and its work."""

    checked: int
    mismatches: int
    candidates_per_post: float      # subscribers in the post's cell (what matching() scans)
    recipients_per_post: float
    bench_ratio: float              # candidates / recipients of the benchmark's own city
    build_s: float


def check_with_index(pop: Population, counts: np.ndarray, model: Model) -> IndexCheck:
    started = time.perf_counter()
    index: SubscriberIndex[int] = SubscriberIndex(CellGrid(SETTINGS.geo_cell_deg))
    kinds = [tuple(k for k, w in zip(KINDS, row, strict=True) if w) for row in pop.wants]
    for i in range(len(pop.lat)):
        sub: Subscriber[int] = Subscriber(i)
        kind_list = kinds[i] if len(kinds[i]) < len(KINDS) else None
        sub.place(float(pop.lat[i]), float(pop.lon[i]), float(pop.radius[i]), kind_list)
        index.add(sub)
    build_s = time.perf_counter() - started
    rng = np.random.default_rng([model.seed, 99])
    shops = rng.choice(len(pop.shop_lat), model.validate_sample, replace=False)
    mismatches = 0
    for n, s in enumerate(shops):
        kind = n % len(KINDS)
        got = len(index.matching(KINDS[kind], float(pop.shop_lat[s]), float(pop.shop_lon[s])))
        mismatches += got != int(counts[s, kind])
    cands = _cell_candidates(index, pop.shop_lat, pop.shop_lon)
    kind_w = np.array(KIND_WEIGHTS)
    return IndexCheck(checked=len(shops), mismatches=mismatches,
                      candidates_per_post=float(np.mean(cands)),
                      recipients_per_post=float(np.mean(counts @ kind_w)),
                      bench_ratio=_bench_candidate_ratio(), build_s=build_s)


def _cell_candidates(index: SubscriberIndex[Any], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    # What matching() checks for a post there: the subscribers registered in its cell.
    return np.array([index.candidates(float(a), float(b)) for a, b in zip(lat, lon, strict=True)])


def _bench_candidate_ratio() -> float:
    """Candidates per recipient in the benchmark's own city at N = 10,000 (bench/city.py)."""
    from bench import city

    subs = city.make_subscribers(10_000, seed=1)
    shops = city.make_shops(seed=1)
    index: SubscriberIndex[int] = SubscriberIndex(CellGrid(SETTINGS.geo_cell_deg))
    for s in subs:
        sub: Subscriber[int] = Subscriber(s.idx)
        sub.place(s.lat, s.lon, s.radius_m, s.kinds)
        index.add(sub)
    lat = np.array([s.lat for s in shops])
    lon = np.array([s.lon for s in shops])
    cands = _cell_candidates(index, lat, lon)
    recipients = [sum(w * len(index.matching(k, s.lat, s.lon))
                      for k, w in zip(KINDS, KIND_WEIGHTS, strict=True)) for s in shops]
    return float(np.mean(cands) / np.mean(recipients))


# --- Live posts and snapshots -----------------------------------------------------------------


@dataclass(frozen=True)
class Snapshots:
    """What one snapshot costs, on average over the town's phones."""

    live_posts: int
    live_kind_share: tuple[float, float, float]
    posts_in_radius: float          # live posts within the search radius (GEOSEARCH work)
    returned: float                 # posts the script returns (<= snapshot_limit)
    frames: float                   # post frames the socket gets (kinds filtered)
    shops_in_view: float            # distinct shops among them (profile fetches per session)
    new_shops_per_move: float       # shops entering the view at one move
    valkey_us: float                # Valkey CPU of one snapshot script (PROBE regression)
    valkey_us_p99: float


def live_posts_per_shop(model: Model, rng: np.random.Generator, shops: int) -> np.ndarray:
    """(shops, 3) live posts at 19:00 by kind: the day's arrivals (live until midnight),
    flash offers of the last `flash_lifetime_h` hours, one opening change for shops with hours."""
    shares = np.array(KIND_WEIGHTS)
    arrivals = model.daily_posts * shares[0] * model.day_share_by_peak
    flash = (model.peak_posts_per_h * shares[1]
             + model.bursts_per_h * model.burst_share) * model.flash_lifetime_h
    return np.stack([rng.poisson(arrivals, shops), rng.poisson(flash, shops),
                     (rng.random(shops) < model.hours_share).astype(np.int64)], axis=1)


def snapshot_costs(model: Model, town: Town, pop: Population, live: np.ndarray) -> Snapshots:
    rng = np.random.default_rng([model.seed, town.rank, 7])
    phones = np.nonzero(~pop.screen)[0]
    sample = rng.choice(phones, min(len(phones), model.snapshot_sample), replace=False)
    per_shop = live.sum(axis=1)
    kind_share = live.sum(axis=0) / max(1, int(live.sum()))
    limit = SETTINGS.snapshot_limit
    s_lat = np.radians(pop.shop_lat)
    s_lon = np.radians(pop.shop_lon)
    in_radius = np.empty(len(sample))
    returned = np.empty(len(sample))
    frames = np.empty(len(sample))
    shops_seen = np.empty(len(sample))
    new_per_move = np.empty(len(sample))
    for start in range(0, len(sample), 256):
        idx = sample[start:start + 256]
        la = np.radians(pop.lat[idx])[:, None]
        lo = np.radians(pop.lon[idx])[:, None]
        h = (np.sin((s_lat[None, :] - la) / 2) ** 2
             + np.cos(la) * np.cos(s_lat)[None, :] * np.sin((s_lon[None, :] - lo) / 2) ** 2)
        dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
        # feed/snapshot.py asks GEOSEARCH for radius * 1.001 + 1 m.
        reach = (pop.radius[idx] * 1.001 + 1.0)[:, None]
        inside = dist <= reach
        n_in = (inside * per_shop[None, :]).sum(axis=1)
        order = np.argsort(np.where(inside, dist, np.inf), axis=1)
        cum = np.cumsum(np.take_along_axis(np.where(inside, per_shop[None, :], 0), order, axis=1),
                        axis=1)
        k = np.minimum(n_in, limit)
        # Shops needed (nearest first) to fill the snapshot, and how far the last one is.
        needed = np.minimum((cum < np.maximum(k, 1)[:, None]).sum(axis=1) + 1, inside.sum(axis=1))
        last = np.take_along_axis(order, np.maximum(needed - 1, 0)[:, None], axis=1)[:, 0]
        rho = np.where(needed > 0, dist[np.arange(len(idx)), last], pop.radius[idx])
        want_share = (pop.wants[idx] * kind_share[None, :]).sum(axis=1)
        sl = slice(start, start + len(idx))
        in_radius[sl] = n_in
        returned[sl] = k
        frames[sl] = k * want_share
        shops_seen[sl] = needed * want_share
        new_per_move[sl] = needed * want_share * np.minimum(
            1.0, 2 * MOVE_THRESHOLD_M / (math.pi * np.maximum(rho, MOVE_THRESHOLD_M)))
    valkey = (float(PROBE["snapshot_us_fixed"])
              + float(PROBE["snapshot_us_per_post_in_radius"]) * in_radius
              + float(PROBE["snapshot_us_per_returned"]) * returned)
    return Snapshots(
        live_posts=int(live.sum()),
        live_kind_share=(float(kind_share[0]), float(kind_share[1]), float(kind_share[2])),
        posts_in_radius=float(in_radius.mean()), returned=float(returned.mean()),
        frames=float(frames.mean()), shops_in_view=float(shops_seen.mean()),
        new_shops_per_move=float(new_per_move.mean()), valkey_us=float(valkey.mean()),
        valkey_us_p99=float(np.percentile(valkey, 99)))


# --- The peak hour ----------------------------------------------------------------------------


@dataclass
class Peak:
    posts: np.ndarray          # posts per second, over the hour
    tombstones: np.ndarray     # expiries + withdrawals per second
    deliveries: np.ndarray     # frames of posts and tombstones per second
    recipients: np.ndarray     # per post

    @staticmethod
    def design(series: np.ndarray, window: int = 10) -> float:
        """The 99th percentile of `window`-second averages: what the peak hour asks for."""
        avg = np.convolve(series, np.ones(window) / window, mode="valid")
        return float(np.percentile(avg, 99))

    @property
    def posts_mean(self) -> float:
        return float(self.posts.mean())

    @property
    def deliveries_mean(self) -> float:
        return float(self.deliveries.mean())


def peak_hour(model: Model, town: Town, counts: np.ndarray) -> Peak:
    rng = np.random.default_rng([model.seed, town.rank, 3])
    seconds = 3600
    shops = counts.shape[0]
    kind_p = np.array(KIND_WEIGHTS) / sum(KIND_WEIGHTS)
    # Baseline posting: Poisson, each post from a random shop, kind by the benchmark's shares.
    n_base = rng.poisson(shops * model.peak_rate_per_shop_s * seconds)
    t_base = rng.integers(0, seconds, n_base)
    s_base = rng.integers(0, shops, n_base)
    k_base = rng.choice(3, n_base, p=kind_p)
    # Flash-offer bursts: a share of the shops posts within a minute (a street-wide sale).
    t_parts = [t_base]
    s_parts = [s_base]
    k_parts = [k_base]
    for _ in range(rng.poisson(model.bursts_per_h)):
        begin = rng.integers(0, seconds - int(model.burst_s))
        size = rng.poisson(model.burst_share * shops)
        t_parts.append(begin + rng.integers(0, int(model.burst_s), size))
        s_parts.append(rng.integers(0, shops, size))
        k_parts.append(np.full(size, 1))
    t = np.concatenate(t_parts)
    s = np.concatenate(s_parts)
    k = np.concatenate(k_parts)
    recipients = counts[s, k]
    # Tombstones (expired / withdrawn frames go to the same sockets): flash offers ending
    # (steady state: as many as are posted) and withdrawals of any kind.
    flash_rate = shops * (model.peak_rate_per_shop_s * kind_p[1]
                          + model.bursts_per_h * model.burst_share / 3600)
    withdraw_rate = shops * model.peak_rate_per_shop_s * model.withdraw_share
    n_tomb = rng.poisson((flash_rate + withdraw_rate) * seconds)
    t_tomb = rng.integers(0, seconds, n_tomb)
    is_flash = rng.random(n_tomb) < flash_rate / (flash_rate + withdraw_rate)
    k_tomb = np.where(is_flash, 1, rng.choice(3, n_tomb, p=kind_p))
    tomb_recipients = counts[rng.integers(0, shops, n_tomb), k_tomb]
    deliveries = (np.bincount(t, weights=recipients, minlength=seconds)
                  + np.bincount(t_tomb, weights=tomb_recipients, minlength=seconds))
    return Peak(posts=np.bincount(t, minlength=seconds).astype(float),
                tombstones=np.bincount(t_tomb, minlength=seconds).astype(float),
                deliveries=deliveries, recipients=recipients.astype(float))


# --- Presence cells ---------------------------------------------------------------------------


def presence_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """feed.hub's presence cell of each point (CellGrid(PRESENCE_CELL_DEG).cell_of, vectorised)."""
    grid = CellGrid(PRESENCE_CELL_DEG)
    band = np.clip(np.floor((lat + 90.0) / PRESENCE_CELL_DEG).astype(np.int64), 0, grid.bands - 1)
    per_band = {int(b): grid.cells_in_band(int(b)) for b in np.unique(band)}
    n = np.array([per_band[int(b)] for b in band], dtype=np.int64)
    col = np.floor(((lon + 180.0) % 360.0) / 360.0 * n).astype(np.int64) % n
    return (band << 24) | col


def cells_per_process(cells: np.ndarray, processes: int, rng: np.random.Generator) -> float:
    """Distinct presence cells a process publishes when phones are spread at random."""
    if processes <= 1:
        return float(len(np.unique(cells)))
    proc = rng.integers(0, processes, len(cells)).astype(np.int64)
    return len(np.unique(proc * (1 << 44) + cells)) / processes


# --- One region's load ------------------------------------------------------------------------


@dataclass
class TownSim:
    """Everything simulated for one town (independent of how many processes serve it)."""

    town: Town
    pop: Population
    sockets: int
    phones: int
    screens: int
    counts: np.ndarray
    peak: Peak
    snaps: Snapshots
    cells: np.ndarray
    cells_near_shop: float           # occupied presence cells within 2 km of a shop
    live: np.ndarray
    check: IndexCheck | None = None
    cell_cache: dict[int, float] = field(default_factory=dict)

    def cells_for(self, processes: int, seed: int) -> float:
        """Distinct presence cells per process, phones spread at random over `processes`."""
        if processes not in self.cell_cache:
            self.cell_cache[processes] = cells_per_process(
                self.cells, processes, np.random.default_rng([seed, self.town.rank, 11]))
        return self.cell_cache[processes]


@dataclass
class Load:
    """A town served by `processes` gateway processes that all read its region."""

    processes: int
    splits: int                      # regions the town's region is split into
    converged: bool
    gateway: dict[str, float]        # WebSocket work, cores, by line item
    api: dict[str, float]            # HTTP work (console, profiles, posts), cores
    valkey: dict[str, float]         # region shard cores, by line item
    valkey_global: dict[str, float]  # cores on keys spread over all shards (shops, limits)
    ops: dict[str, float]            # region commands/s (script-inner commands counted)
    ops_global: float
    memory: dict[str, float]         # region bytes
    memory_global: float
    rates: dict[str, float]
    cells_per_process: float
    workers_cores: float
    unsplit: tuple[float, float] = (0.0, 0.0)   # the region's (Valkey cores, commands/s), k = 1

    @property
    def gateway_cores(self) -> float:
        return sum(self.gateway.values())

    @property
    def api_cores(self) -> float:
        return sum(self.api.values())

    @property
    def valkey_cores(self) -> float:
        return sum(self.valkey.values())

    @property
    def ops_total(self) -> float:
        return sum(self.ops.values())

    @property
    def memory_total(self) -> float:
        return sum(self.memory.values())


def simulate_town(model: Model, town: Town, *, with_index: bool = False) -> TownSim:
    pop = make_population(model, town)
    counts = count_recipients(pop)
    check = check_with_index(pop, counts, model) if with_index else None
    rng = np.random.default_rng([model.seed, town.rank, 5])
    live = live_posts_per_shop(model, rng, town.shops)
    cells = presence_cells(pop.lat[~pop.screen], pop.lon[~pop.screen])
    return TownSim(town=town, pop=pop, sockets=len(pop.lat), phones=pop.phones,
                   screens=int(pop.screen.sum()), counts=counts,
                   peak=peak_hour(model, town, counts),
                   snaps=snapshot_costs(model, town, pop, live), cells=cells,
                   cells_near_shop=cells_near_shops(pop, cells, model, town), live=live,
                   check=check)


def cells_near_shops(pop: Population, cells: np.ndarray, model: Model, town: Town,
                     radius_m: float = 2_000.0, sample: int = 300) -> float:
    """Occupied presence cells within `radius_m` (the console's widest ring) of a shop."""
    grid = CellGrid(PRESENCE_CELL_DEG)
    occupied = np.unique(cells)
    centres = np.array([grid.centre_of(int(c)) for c in occupied])
    c_lat = np.radians(centres[:, 0])
    c_lon = np.radians(centres[:, 1])
    rng = np.random.default_rng([model.seed, town.rank, 13])
    shops = rng.choice(len(pop.shop_lat), min(sample, len(pop.shop_lat)), replace=False)
    near = []
    for start in range(0, len(shops), 50):
        sel = shops[start:start + 50]
        la = np.radians(pop.shop_lat[sel])[:, None]
        lo = np.radians(pop.shop_lon[sel])[:, None]
        h = (np.sin((c_lat[None, :] - la) / 2) ** 2
             + np.cos(la) * np.cos(c_lat)[None, :] * np.sin((c_lon[None, :] - lo) / 2) ** 2)
        near += list((h <= math.sin(radius_m / EARTH_RADIUS_M / 2) ** 2).sum(axis=1))
    return float(np.mean(near))


def _probe_figures() -> dict[str, float]:
    return {k: float(v) for k, v in PROBE.items() if not isinstance(v, str)}


def town_load(model: Model, sim: TownSim, measured: Measured, processes: int, *,
              process_cells: float | None = None, splits: int = 1) -> Load:
    """The town's load when `processes` gateway processes serve it.

    `process_cells`: presence cells each of them publishes, when they also serve other
    towns (a process writes its whole map under every region it reads). `splits`: the
    town's region split into that many regions, each served by its own processes (the load
    balancer routes by position), so a console poll reads only its district's gateways.
    """
    p = _probe_figures()
    peak = sim.peak
    posts = Peak.design(peak.posts)
    tombs = Peak.design(peak.tombstones)
    deliveries = Peak.design(peak.deliveries)
    snaps = sim.snaps
    c_del = measured.delivery_s
    cmd = p["valkey_us_per_cmd"] / 1e6
    opens = sim.phones / model.session_s
    moves = sim.phones * model.walking_share * model.walk_speed_m_s / MOVE_THRESHOLD_M
    consoles = sim.town.shops * model.console_share
    polls = consoles * (model.console_visible / CONSOLE_POLL_S
                        + (1 - model.console_visible) / CONSOLE_HIDDEN_POLL_S)
    profiles = opens * snaps.shops_in_view + moves * snaps.new_shops_per_move
    cells_pp = process_cells if process_cells is not None else sim.cells_for(processes,
                                                                              model.seed)
    region_cells = cells_pp * processes
    # Processes with at least one recipient of a post (phones spread at random over them).
    mean_rec = float(np.mean(peak.recipients)) if len(peak.recipients) else 0.0
    with_recipients = processes * (1 - (1 - 1 / processes) ** mean_rec)
    live_per_shop = float(sim.live.sum()) / max(1, sim.town.shops)
    snapshot_frame_s = snaps.frames * p["gw_frame_us"] / 1e6

    # Cells a console poll goes through: every gateway's, or (fixed) only those it needs.
    poll_cells = sim.cells_near_shop if model.console_nearby_only else region_cells / splits
    # Presence: each process PUBLISHes one report of all its cells per flush on its region's
    # channel (a district's, once split). What listening processes receive is added by
    # `listen`, once the number of API processes is known.
    presence_reports = processes / PRESENCE_FLUSH_S
    presence_cells = region_cells / PRESENCE_FLUSH_S
    gateway = {
        "live fan-out (posts + tombstones)": deliveries * c_del,
        # Hub.ping writes one cached frame per socket: the ceiling scenario's bare write.
        "keepalive pings": sim.sockets / SETTINGS.gateway_ping_interval_s * measured.write_s,
        "socket opens + their snapshots": opens * (p["gw_open_ms"] / 1e3 + snapshot_frame_s),
        "subscribe moves + their snapshots": moves * (max(0.0, p["gw_move_ms"]) / 1e3
                                                      + snapshot_frame_s),
        "feed reads (every process, every entry)": (posts + tombs) * processes
        * p["gw_read_us"] / 1e6,
        "presence flush (report encoded, PUBLISH)": presence_cells
        * p["gw_presence_encode_us_per_cell"] / 1e6,
    }
    api = {
        "shop-console polls (stats + posts)": polls * (
            p["poll_ms"] / 1e3 + poll_cells * p["poll_us_per_cell_in_memory"] / 1e6),
        "presence reports heard (every listening process)": 0.0,   # see `listen`
        "shop-profile fetches": profiles * p["profile_ms"] / 1e3,
        "post ingest (POST)": posts * p["post_ms"] / 1e3,
    }
    # Valkey, on the region's shard (every key of the region shares its hash slot).
    snapshot_us = snaps.valkey_us / 1e6 + cmd
    valkey = {
        "posts: ingest, enricher, 1 reader (measured)": posts * measured.valkey_ms_per_post / 1e3,
        "feed reads by the other processes": (posts + tombs) * (processes - 1) * cmd,
        "reach counters": posts * max(0.0, with_recipients - 1) * 3 * cmd,
        "expiries / withdrawals (remove script)": tombs * (p["remove_us"] / 1e6 + cmd),
        "snapshots of socket opens": opens * snapshot_us,
        "snapshots of subscribe moves": moves * snapshot_us,
        "presence PUBLISH (no listener)": presence_reports * cmd
        + presence_cells * p["valkey_publish_us_per_cell"] / 1e6,
        "shop-console polls": polls * p["valkey_poll_us"] / 1e6,
        "scheduler (opening hours, sweep)": sim.town.shops / 60.0 * 2 * cmd,
    }
    # Keys outside the region's slot (shop records, rate limits, sessions): spread by hash.
    # Per post: address limit, shop GET, shop limit (API) and shop GET (enricher); per open:
    # the socket limit; per poll: 2 address limits, session, 2 shop GETs; per profile: 2.
    valkey_global = {
        "rate limits, auth, shop records (keys outside regions)": (
            posts * 4 + opens + polls * 5 + profiles * 2) * cmd,
        # Each listening process subscribes on one node (streetfeed.redis_conn.pubsub_client),
        # any node of the cluster: its share of the fan-out lands there. See `listen`.
        "presence fan-out to listening processes (on their nodes)": 0.0,
    }
    # Commands per second on the region's shard (each command inside a script counts).
    ops = {
        # ingest XADD; enricher XREADGROUP, publish script (1 + 7), XACK; one reader's XREAD
        "posts": posts * 12,
        "feed reads by the other processes": (posts + tombs) * (processes - 1),
        "reach": posts * with_recipients * 3,
        "tombstones (remove script 1 + 6)": tombs * 7,
        # script + XREVRANGE + GEOSEARCH + one HMGET per post returned
        "snapshots": (opens + moves) * (3 + snaps.returned),
        "presence PUBLISH": presence_reports,
        # stats: SMEMBERS, HMGET per live post of the shop (reach; presence is in memory);
        # posts: SMEMBERS, HMGET per live post
        "console polls": polls * (2 + 2 * live_per_shop),
        "scheduler": sim.town.shops / 60.0 * 2,
    }
    ops_global = (posts * 8 + opens * 3 + polls * 9 + profiles * 4)
    # Memory of the region (steady state after a year: feed streams full up to feed_maxlen).
    day_posts = sim.town.shops * model.daily_posts
    feed_entries = min(float(SETTINGS.feed_maxlen), 365 * day_posts * 2)
    entry_bytes = (p["feed_post_entry_bytes"] + p["feed_tombstone_entry_bytes"]) / 2
    memory = {
        "live posts (hash, GEO, expiry, shop set)": float(sim.live.sum()) * p["live_post_bytes"],
        "feed stream (feed_maxlen entries)": feed_entries * entry_bytes,
        "reach hashes (3 days)": day_posts * SETTINGS.reach_ttl_s / 86_400 * p["reach_bytes"],
        "withdrawn ids (48 h)": (day_posts * model.withdraw_share * SETTINGS.withdrawn_ttl_s
                                 / 86_400 * 90.0),
        # Presence: none. Pub/Sub stores nothing: a report exists only in the output buffers
        # of the connections it is being sent to (client memory, not data).
    }
    memory_global = sim.town.shops * p["shop_bytes"] + consoles * 250.0
    rates = {"posts_design": posts, "posts_mean": peak.posts_mean, "tombstones_design": tombs,
             "deliveries_design": deliveries, "deliveries_mean": peak.deliveries_mean,
             "opens": opens, "moves": moves, "polls": polls, "profiles": profiles,
             "snapshot_frames": (opens + moves) * snaps.frames,
             "pings": sim.sockets / SETTINGS.gateway_ping_interval_s,
             "feed_entries": feed_entries, "feed_entries_per_day": 2 * day_posts,
             "poll_cells": poll_cells, "presence_reports": presence_reports,
             "presence_cells": presence_cells, "presence_reports_heard": 0.0,
             "presence_cells_heard": 0.0}
    # Workers: the enricher (measured per post) and the scheduler's expiry jobs and minute
    # sweeps (estimates: ~2 ms per arq job, ~50 µs per shop and minute for opening hours).
    workers = (posts * measured.enricher_ms_per_post / 1e3 + tombs * ARQ_JOB_S
               + sim.town.shops * 50e-6 / 60)
    return Load(processes=processes, splits=splits, converged=True, gateway=gateway, api=api,
                valkey=valkey,
                valkey_global=valkey_global, ops=ops, ops_global=ops_global,
                memory=memory, memory_global=memory_global, rates=rates,
                cells_per_process=cells_pp, workers_cores=workers)


def listen(model: Model, load: Load, api_processes: int) -> None:
    """Add to `load` what its presence reports cost once received, with `api_processes`
    answering every console behind a load balancer that spreads requests at random.

    A process listens to a region from a console's request about it until none has come for
    `presence_idle_s` (feed/presence.py), and meanwhile receives every report published on
    its channel: Valkey writes each report to each listening process, which decodes it.
    Per channel (a district's, once split), a given process gets polls / splits / processes
    requests a second; it listens unless none came within `presence_idle_s`. With
    `presence_listeners_per_region`, that many processes listen to each channel instead.
    """
    p = _probe_figures()
    per_channel = load.rates["polls"] / load.splits
    if not (api_processes and per_channel):
        listeners = 0.0
    elif model.presence_listeners_per_region:
        listeners = float(min(api_processes, model.presence_listeners_per_region))
    else:
        listeners = api_processes * -math.expm1(-per_channel * SETTINGS.presence_idle_s
                                                / api_processes)
    # Reports and cells delivered per second, over the town's channels.
    reports = listeners * load.rates["presence_reports"]
    cells = listeners * load.rates["presence_cells"]
    load.rates["presence_reports_heard"] = reports
    load.rates["presence_cells_heard"] = cells
    load.api["presence reports heard (every listening process)"] = (
        reports * p["listener_us_per_report"] + cells * p["listener_decode_us_per_cell"]) / 1e6
    load.valkey_global["presence fan-out to listening processes (on their nodes)"] = (
        reports * p["valkey_fanout_us_per_report_per_listener"]
        + cells * p["valkey_fanout_us_per_cell_per_listener"]) / 1e6


def api_pool(model: Model, loads: list[Load]) -> tuple[int, bool]:
    """API processes for every console, profile and post, each <= 60 % busy, and `listen`
    applied with that many. Every process added listens too, so iterate to a fixed point;
    False when there is none (listening alone fills a process)."""
    processes = 1
    for _ in range(500):
        for load in loads:
            listen(model, load, processes)
        used = sum(ld.api_cores for ld in loads)
        need = max(1, math.ceil(used / model.gateway_max_core - 1e-9))
        if need <= processes:
            return processes, True
        processes = need
    return processes, False


def processes_for(model: Model, sim: TownSim, measured: Measured) -> Load:
    """Enough processes for the sockets (10,000 each) and the CPU (<= 60 % of a core each).

    Some per-process costs grow with the number of processes (every process reads every
    entry; a console poll reads every process's presence cells), so iterate to a fixed
    point; `converged` is False when adding processes adds more work than it takes on.
    """
    processes = max(1, math.ceil(sim.sockets / SOCKETS_PER_PROCESS))
    load = town_load(model, sim, measured, processes)
    for _ in range(60):
        need = max(math.ceil(sim.sockets / SOCKETS_PER_PROCESS),
                   math.ceil(load.gateway_cores / model.gateway_max_core - 1e-9), 1)
        if need <= processes:
            return load
        processes = need
        load = town_load(model, sim, measured, processes)
    load.converged = False
    return load


# --- Sizing ----------------------------------------------------------------------------------


@dataclass
class Sizing:
    label: str
    towns: int
    phones: int
    screens: int
    shops: int
    posts_mean: float
    posts_design: float
    deliveries_mean: float
    deliveries_design: float
    recipients_mean: float
    recipients_p99: float
    gateway_cores_used: float
    gateway_cores: int
    gateway_processes: int
    gateway_memory: float
    api_cores_used: float
    api_processes: int
    api_memory: float
    api_converged: bool
    converged: bool
    shards: int
    region_splits: int
    redis_memory: float
    valkey_cores: float
    ops: float
    biggest_region_cores: float
    biggest_region_ops: float
    latency_spread_ms: float
    latency_one_process_ms: float
    ping_sweep_ms: float
    workers_cores: float
    # Per town: (rank, gateway CPU, Valkey CPU of its region unsplit, regions it is split into).
    per_town: list[tuple[int, float, float, int]] = field(default_factory=list)
    gateway_items: dict[str, float] = field(default_factory=dict)
    api_items: dict[str, float] = field(default_factory=dict)
    valkey_items: dict[str, float] = field(default_factory=dict)
    memory_items: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)


def split_region(model: Model, sim: TownSim, measured: Measured, processes: int,
                 process_cells: float | None = None) -> tuple[Load, list[tuple[float, ...]]]:
    """The town's load and its (Valkey cores, commands/s, bytes) per region, its region
    split into as many as it takes for each to fit one shard (a region's keys share one
    hash slot, hence one shard)."""
    # 5 % of each budget is left for the keys outside regions, spread over every shard.
    max_core, max_ops, max_bytes = (0.95 * model.shard_max_core, 0.95 * model.shard_max_ops,
                                    0.95 * model.shard_max_bytes)
    unsplit = (0.0, 0.0)
    for k in range(1, 10_000):
        load = town_load(model, sim, measured, processes, process_cells=process_cells, splits=k)
        if k == 1:
            unsplit = (load.valkey_cores, load.ops_total)
        load.unsplit = unsplit
        snap = (load.valkey["snapshots of socket opens"]
                + load.valkey["snapshots of subscribe moves"])
        # Split k ways: the rest divides; snapshots near the new borders read two regions.
        overlap = 1 + model.region_split_overlap if k > 1 else 1.0
        cores = (load.valkey_cores - snap + snap * overlap) / k
        ops = load.ops_total / k
        # Each region keeps its own feed stream, up to feed_maxlen entries.
        p = _probe_figures()
        entries = min(float(SETTINGS.feed_maxlen), 365 * load.rates["feed_entries_per_day"] / k)
        stream = entries * (p["feed_post_entry_bytes"] + p["feed_tombstone_entry_bytes"]) / 2
        key = "feed stream (feed_maxlen entries)"
        mem = (load.memory_total - load.memory[key]) / k + stream
        if cores <= max_core and ops <= max_ops and mem <= max_bytes:
            load.memory[key] = stream * k
            load.rates["feed_entries"] = entries * k
            return load, [(cores, ops, mem)] * k
    raise SystemExit("capacity: a region that 10,000 shards cannot hold")


def pack(items: list[tuple[float, ...]], caps: tuple[float, ...]) -> list[list[int]]:
    """First-fit decreasing bin packing of multi-dimensional items (indices per bin)."""
    order = sorted(range(len(items)),
                   key=lambda i: -max(v / c for v, c in zip(items[i], caps, strict=True)))
    bins: list[list[int]] = []
    used: list[list[float]] = []
    for i in order:
        for b, u in enumerate(used):
            if all(u[d] + items[i][d] <= caps[d] * (1 + 1e-9) for d in range(len(caps))):
                bins[b].append(i)
                for d in range(len(caps)):
                    u[d] += items[i][d]
                break
        else:
            bins.append([i])
            used.append(list(items[i]))
    return bins


def place(model: Model, sims: list[TownSim], measured: Measured, label: str) -> Sizing:
    """Gateway processes for every town, then every region (split if needed) onto shards."""
    loads: list[Load] = []
    shared: list[int] = []
    for i, sim in enumerate(sims):
        alone = town_load(model, sim, measured, 1)
        if (len(sims) > 1 and sim.sockets <= SOCKETS_PER_PROCESS / 2
                and alone.gateway_cores <= model.gateway_max_core / 2):
            shared.append(i)      # small: shares a process with other towns
            loads.append(alone)
        else:
            loads.append(processes_for(model, sim, measured))
    dedicated = sum(ld.processes for i, ld in enumerate(loads) if i not in set(shared))
    bins = pack([(sims[i].sockets / SOCKETS_PER_PROCESS, loads[i].gateway_cores) for i in shared],
                (1.0, model.gateway_max_core))
    processes = dedicated + len(bins)
    # A process serving several towns writes its whole presence map under each one's region.
    process_cells: dict[int, float] = {}
    for b in bins:
        total = sum(sims[shared[j]].cells_for(1, model.seed) for j in b)
        for j in b:
            process_cells[shared[j]] = total
    caps = (model.shard_max_core, model.shard_max_ops, model.shard_max_bytes)
    parts: list[tuple[float, ...]] = []
    for i, sim in enumerate(sims):
        converged = loads[i].converged
        loads[i], town_parts = split_region(model, sim, measured, loads[i].processes,
                                            process_cells.get(i))
        loads[i].converged = converged
        parts += town_parts
    splits = len(parts) - len(loads)
    api_processes, api_converged = api_pool(model, loads)
    # Shop records, sessions and rate-limit counters hash over every shard, and listening
    # processes subscribe on any node (the presence fan-out): share them out.
    global_cores = sum(sum(ld.valkey_global.values()) for ld in loads)
    global_ops = sum(ld.ops_global for ld in loads)
    global_bytes = sum(ld.memory_global for ld in loads)
    least = len(pack(parts, caps))
    shards = least
    for n in range(least, 100 * least + 10):  # the first count that holds everything
        share = (global_cores / n, global_ops / n, global_bytes / n)
        room = tuple(c - g for c, g in zip(caps, share, strict=True))
        if all(r > 0 for r in room) and len(pack(parts, room)) <= n:
            shards = n
            break
    return _sizing(model, label, sims, loads, measured, shards, splits, processes,
                   api_processes, api_converged)


def _sizing(model: Model, label: str, sims: list[TownSim], loads: list[Load], measured: Measured,
            shards: int, splits: int, processes: int, api_processes: int,
            api_converged: bool) -> Sizing:
    cores_used = sum(ld.gateway_cores for ld in loads)
    api_used = sum(ld.api_cores for ld in loads)
    sockets = sum(s.sockets for s in sims)
    all_posts = np.sum([s.peak.posts for s in sims], axis=0)
    all_del = np.sum([s.peak.deliveries for s in sims], axis=0)
    recipients = np.concatenate([s.peak.recipients for s in sims])
    biggest = max(range(len(sims)), key=lambda i: loads[i].unsplit[0])
    c_del = measured.delivery_s
    p99 = float(np.percentile(recipients, 99)) if len(recipients) else 0.0
    city = loads[0]
    # Latency: the p99 post of the biggest place, its recipients spread over its processes.
    p99_city = float(np.percentile(sims[0].peak.recipients, 99))

    def total(attr: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for ld in loads:
            for k, v in getattr(ld, attr).items():
                out[k] = out.get(k, 0.0) + v
        return out

    memory_items = total("memory")
    memory_items["shops, console sessions (keys outside regions)"] = sum(
        ld.memory_global for ld in loads)
    valkey_items = total("valkey")
    valkey_items.update(total("valkey_global"))
    return Sizing(
        label=label, towns=len(sims), phones=sum(s.phones for s in sims),
        screens=sum(s.screens for s in sims), shops=sum(s.town.shops for s in sims),
        posts_mean=float(all_posts.mean()), posts_design=Peak.design(all_posts),
        deliveries_mean=float(all_del.mean()), deliveries_design=Peak.design(all_del),
        recipients_mean=float(recipients.mean()) if len(recipients) else 0.0,
        recipients_p99=p99, gateway_cores_used=cores_used,
        gateway_cores=math.ceil(cores_used / model.gateway_max_core - 1e-9),
        gateway_processes=processes,
        gateway_memory=processes * measured.rss_kib_base * KIB
        + sockets * measured.rss_kib_per_socket * KIB,
        api_cores_used=api_used, api_processes=api_processes, api_converged=api_converged,
        api_memory=api_processes * measured.rss_kib_base * KIB,
        converged=all(ld.converged for ld in loads),
        shards=shards, region_splits=splits,
        redis_memory=sum(memory_items.values()),
        valkey_cores=sum(valkey_items.values()),
        ops=sum(ld.ops_total + ld.ops_global for ld in loads),
        biggest_region_cores=loads[biggest].unsplit[0],
        biggest_region_ops=loads[biggest].unsplit[1],
        latency_spread_ms=p99_city / city.processes * c_del * 1e3,
        latency_one_process_ms=min(p99_city, SOCKETS_PER_PROCESS) * c_del * 1e3,
        # Hub.ping writes one slice of a process's sockets per turn.
        ping_sweep_ms=(min(sockets / processes, SOCKETS_PER_PROCESS) / PING_SLICES
                       * measured.write_s * 1e3),
        workers_cores=sum(ld.workers_cores for ld in loads),
        per_town=[(s.town.rank, ld.gateway_cores, ld.unsplit[0], ld.splits)
                  for s, ld in zip(sims, loads, strict=True)],
        gateway_items=total("gateway"), api_items=total("api"), valkey_items=valkey_items,
        memory_items=memory_items, rates=total("rates"))


# --- Country ---------------------------------------------------------------------------------


def country_towns(model: Model) -> list[Town]:
    towns = []
    for r in range(1, model.towns + 1):
        watchers = max(1, round(model.watchers / r**model.zipf_s))
        share = watchers / model.watchers
        towns.append(Town(rank=r, name="city" if r == 1 else f"town-{r:03d}", watchers=watchers,
                          shops=max(model.min_shops,
                                    round(model.shops * share**model.shops_exponent)),
                          scale=max(model.min_scale,
                                    model.city_scale * share**model.scale_exponent)))
    return towns


# --- Variants ---------------------------------------------------------------------------------


@dataclass
class Report:
    model: Model
    measured: Measured
    city: Sizing
    country: Sizing
    city_sim: TownSim
    country_sims: list[TownSim]
    sensitivity: list[tuple[str, Sizing, Sizing | None]]
    midnight: dict[str, float]
    elapsed_s: float


@dataclass(frozen=True)
class Variant:
    name: str
    model: Model
    population: bool = False   # radii change: recount recipients
    posting: bool = False      # posting changes: new peak hour and live posts
    country: bool = True       # size the country too


def variants(model: Model) -> list[Variant]:
    return [
        Variant("posting x2 (once per 10 min, bursts x2, 16 posts a day)",
                replace(model, peak_posts_per_h=model.peak_posts_per_h * 2,
                        bursts_per_h=model.bursts_per_h * 2, daily_posts=model.daily_posts * 2),
                posting=True),
        Variant("radius up to 2 km (30 % at 2,000 m)",
                replace(model, radius_mix=((2_000.0, 0.30), (1_000.0, 0.45), (500.0, 0.15),
                                           (250.0, 0.10))), population=True, country=False),
        Variant("radius uniform 200-1,000 m (the benchmark's)",
                replace(model, radius_uniform=(200.0, 1_000.0)), population=True, country=False),
        Variant("sockets reopened every 2.5 min", replace(model, session_s=model.session_s / 2)),
        Variant("nobody walking (no moves)", replace(model, walking_share=0.0)),
        Variant("40 % walking", replace(model, walking_share=0.4)),
        Variant("console reads only the cells within 2 km (a fix)",
                replace(model, console_nearby_only=True)),
        Variant("consoles routed by region, 2 API processes listening to each (a fix)",
                replace(model, presence_listeners_per_region=2)),
        Variant("no shop console open", replace(model, console_share=0.0)),
    ]


def _resimulate(v: Variant, base: TownSim) -> TownSim:
    if v.population:
        return simulate_town(v.model, base.town)
    if not v.posting:
        return base
    rng = np.random.default_rng([v.model.seed, base.town.rank, 5])
    live = live_posts_per_shop(v.model, rng, base.town.shops)
    return replace(base, peak=peak_hour(v.model, base.town, base.counts), live=live,
                   snaps=snapshot_costs(v.model, base.town, base.pop, live))


def run(model: Model, measured: Measured, *, progress: Callable[[str], None]) -> Report:
    started = time.perf_counter()
    towns = country_towns(model)
    progress("city: population, recipients (checked with the real SubscriberIndex), peak hour")
    city_sim = simulate_town(model, towns[0], with_index=True)
    city = place(model, [city_sim], measured, "city")
    progress(f"country: {len(towns) - 1} more towns")
    sims = [city_sim] + [simulate_town(model, t) for t in towns[1:]]
    country = place(model, sims, measured, "country")
    sensitivity: list[tuple[str, Sizing, Sizing | None]] = [("base", city, country)]
    for v in variants(model):
        progress(f"variant: {v.name}")
        v_sims = [_resimulate(v, sims[0])]
        v_city = place(v.model, v_sims, measured, "city")
        v_country = None
        if v.country:
            v_sims += [_resimulate(v, s) for s in sims[1:]]
            v_country = place(v.model, v_sims, measured, "country")
        sensitivity.append((v.name, v_city, v_country))
    # Midnight: every new arrival and opening change of the day ends at the end of the local
    # day (workers/expiry.py), in the same second, in every town of the time zone.
    def at_midnight(sim: TownSim) -> float:
        return float(sim.live[:, 0].sum()) / model.day_share_by_peak + float(sim.live[:, 2].sum())

    midnight = {"city": at_midnight(city_sim), "country": sum(at_midnight(s) for s in sims)}
    return Report(model=model, measured=measured, city=city, country=country, city_sim=city_sim,
                  country_sims=sims, sensitivity=sensitivity,
                  midnight=midnight, elapsed_s=time.perf_counter() - started)


# --- Output ----------------------------------------------------------------------------------


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _gib(x: float) -> str:
    return f"{x / GIB:,.1f} GiB" if x >= 0.1 * GIB else f"{x / 1024**2:,.0f} MiB"


def table_rows(s: Sizing) -> list[tuple[str, str]]:
    return [
        ("towns (one region each before any split)", _n(s.towns)),
        ("phones watching at peak / in-shop screens", f"{_n(s.phones)} / {_n(s.screens)}"),
        ("shops", _n(s.shops)),
        ("posts/s at peak: mean / design (p99 of 10-s windows)",
         f"{_f(s.posts_mean)} / {_f(s.posts_design)}"),
        ("deliveries/s (post + expiry/withdrawal frames): mean / design",
         f"{_n(s.deliveries_mean)} / {_n(s.deliveries_design)}"),
        ("recipients per post: mean / p99", f"{_n(s.recipients_mean)} / {_n(s.recipients_p99)}"),
        ("snapshot frames/s (socket opens + moves)", _n(s.rates.get("snapshot_frames", 0.0))),
        ("gateway CPU used at peak", f"{_f(s.gateway_cores_used)} cores"
         + ("" if s.converged else " (no fixed point)")),
        ("**gateway cores** (<= 60 % busy each)", f"**{_n(s.gateway_cores)}**"),
        ("**gateway processes** (<= 10,000 sockets each)", f"**{_n(s.gateway_processes)}**"),
        ("**gateway memory** (RSS)", f"**{_gib(s.gateway_memory)}**"),
        ("API processes (console, profiles, posts): CPU used / processes / memory",
         f"{_f(s.api_cores_used)} cores / {_n(s.api_processes)} / {_gib(s.api_memory)}"
         + ("" if s.api_converged else " (no fixed point)")),
        ("Valkey CPU, all shards", f"{_f(s.valkey_cores, 2)} cores"),
        ("Redis commands/s (each command inside a script counted)", _n(s.ops)),
        ("biggest town's region, unsplit: Valkey CPU / commands/s",
         f"{_f(s.biggest_region_cores, 2)} cores / {_n(s.biggest_region_ops)}"),
        ("extra regions from splitting regions too big for a shard", _n(s.region_splits)),
        ("**Redis shards** (primaries; one replica each on top)", f"**{_n(s.shards)}**"),
        ("**Redis memory** (data, steady state)", f"**{_gib(s.redis_memory)}**"),
        ("city's p99 post: spread over its processes / all on one process",
         f"{_f(s.latency_spread_ms)} / {_f(s.latency_one_process_ms)} ms"),
        ("a process's ping turn, one slice (event loop busy)", f"{_f(s.ping_sweep_ms)} ms"),
        ("workers (enricher, scheduler) CPU", f"{_f(s.workers_cores, 2)} cores"),
    ]


def breakdown(city: Sizing, country: Sizing) -> list[str]:
    lines = ["| gateway (WebSocket) CPU, cores | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v, 2)} | {_f(country.gateway_items[k], 2)} |"
              for k, v in city.gateway_items.items()]
    lines += ["", "| API (HTTP) CPU, cores | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v, 2)} | {_f(country.api_items[k], 2)} |"
              for k, v in city.api_items.items()]
    lines += ["", "| Valkey CPU, cores | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v, 3)} | {_f(country.valkey_items[k], 3)} |"
              for k, v in city.valkey_items.items()]
    lines += ["", "| Redis memory | city | country |", "|---|---|---|"]
    lines += [f"| {k} | {_gib(v)} | {_gib(country.memory_items[k])} |"
              for k, v in city.memory_items.items()]
    return lines


def presence_lines(label: str, s: Sizing, model: Model) -> str:
    """What presence over Pub/Sub amounts to, and what a cluster adds (not in the tables)."""
    p = _probe_figures()
    r = s.rates
    per_listener = r["presence_cells_heard"] / max(1, s.api_processes)
    reports_per_listener = r["presence_reports_heard"] / max(1, s.api_processes)
    listener_cores = (reports_per_listener * p["listener_us_per_report"]
                      + per_listener * p["listener_decode_us_per_cell"]) / 1e6
    mb = p["presence_bytes_per_cell"] / 1e6
    # Classic PUBLISH on a cluster reaches every node over the cluster bus (streetfeed/
    # redis_conn.py publish): each other node's copy priced as one more fan-out from the
    # channel's node and, on the node, as the cells of a PUBLISH nobody listens to.
    bus = max(0, s.shards - 1) * (
        r["presence_reports"] * p["valkey_fanout_us_per_report_per_listener"]
        + r["presence_cells"] * (p["valkey_publish_us_per_cell"]
                                 + p["valkey_fanout_us_per_cell_per_listener"])) / 1e6
    return (f"- Presence, {label}: gateway processes publish {r['presence_reports']:,.0f} "
            f"reports/s, {r['presence_cells']:,.0f} cells/s ({r['presence_cells'] * mb:,.1f} "
            f"MB/s); the {s.api_processes:,} API processes listen, each receiving "
            f"{reports_per_listener:,.0f} reports/s, {per_listener:,.0f} cells/s "
            f"({per_listener * mb:,.1f} MB/s) on average: {listener_cores:.2f} cores each, "
            f"out of {model.gateway_max_core:.2f}; Valkey sends "
            f"{r['presence_cells_heard'] * mb:,.0f} MB/s of presence in all. Not in the "
            f"tables: on a cluster every report also crosses the bus to each of the "
            f"{max(0, s.shards - 1):,} other nodes, ~{bus:.2f} cores in all (estimate). Redis "
            f"memory: none (Pub/Sub stores nothing).")


def render(report: Report) -> str:
    m, ms, city, country = report.model, report.measured, report.city, report.country
    sim = report.city_sim
    out: list[str] = [
        f"Generated by `python -m bench.capacity` (seed {m.seed}) "
        f"from `{ms.path}` (`{ms.command}`, started {ms.started}) and the `PROBE` figures "
        f"({PROBE['measured']}).", "",
        "![recipients per post in the city; load per town](capacity.png)", "",
        "#### Results", "", "| | city | country |", "|---|---|---|"]
    for (name, a), (_, b) in zip(table_rows(city), table_rows(country), strict=True):
        out.append(f"| {name} | {a} | {b} |")
    out += ["", "#### Measured figures used", "", "| figure | value | from |", "|---|---|---|"]
    key = f'by_n["{ms.n}"].scenarios.streetfeed'
    runs = f'runs[streetfeed, n={ms.n}]'
    out += [
        f"| gateway CPU per delivery | {ms.cpu_s_per_100k:.3f} CPU-s per 100k = "
        f"{ms.delivery_s * 1e6:.1f} µs | `{ms.path}`: `{key}.cpu_s_per_100k.median` |",
        f"| RSS per idle socket | {ms.rss_kib_per_socket:.1f} KiB | "
        f"`{key}.rss_kib_per_socket.median` |",
        f"| RSS of an idle `streetfeed web` process | {ms.rss_kib_base / 1024:.1f} MiB | median "
        f"of `{runs}.rss_kib_before` ({ms.runs} runs) |",
        f"| Valkey CPU per post, full path | {ms.valkey_ms_per_post:.3f} ms | median of "
        f"`{runs}.cpu_s_saturation.valkey / saturation_posts` |",
        f"| bare frame write (pings) | {ms.write_cpu_s_per_100k:.3f} CPU-s per 100k | "
        f"`by_n[\"{ms.n}\"].scenarios.ceiling.cpu_s_per_100k.median` |",
        f"| enricher CPU per post | {ms.enricher_ms_per_post:.2f} ms | "
        f"`{runs}.cpu_s_saturation[\"streetfeed-enricher\"] / saturation_posts` |",
        f"| (context) deliveries/s at saturation, one process | {ms.deliveries_per_s:,.0f} | "
        f"`{key}.deliveries_per_s.median` |",
        f"| (context) deliveries per post in the benchmark | {ms.deliveries_per_post:,.0f} | "
        f"`{runs}.saturation_deliveries / saturation_posts` |",
    ]
    out += [f"| probe: `{k}` | {v:g} | `PROBE`, bench/capacity.py |"
            for k, v in PROBE.items() if not isinstance(v, str)]
    out += ["", "#### The city, as simulated", ""]
    if sim.check is not None:
        c = sim.check
        ratio = c.candidates_per_post / max(1.0, c.recipients_per_post)
        out.append(
            f"- Recipients counted for all {sim.town.shops:,} shops x 3 kinds; {c.checked} "
            f"(shop, kind) pairs re-counted with the real `SubscriberIndex` over the same "
            f"{sim.sockets:,} subscribers: **{c.mismatches} "
            f"mismatches**.")
        out.append(
            f"- Index work: a post scans the {c.candidates_per_post:,.0f} subscribers of its "
            f"cell for {c.recipients_per_post:,.0f} recipients, {ratio:.2f} per recipient "
            f"(the benchmark's city at N = 10,000: {c.bench_ratio:.2f}).")
    sn = sim.snaps
    r = city.rates
    split = [t for t in country.per_town if t[3] > 1]
    out += [
        f"- Live posts at 19:00: {sn.live_posts:,} ({sn.live_kind_share[0]:.0%} arrivals, "
        f"{sn.live_kind_share[1]:.0%} flash offers, {sn.live_kind_share[2]:.0%} opening "
        f"changes). A snapshot's GEOSEARCH meets {sn.posts_in_radius:,.0f} live posts on "
        f"average and returns {sn.returned:,.0f} (limit {SETTINGS.snapshot_limit}); the phone "
        f"gets {sn.frames:,.0f} frames from {sn.shops_in_view:,.0f} shops; Valkey spends "
        f"{sn.valkey_us:,.0f} µs on it (p99 {sn.valkey_us_p99:,.0f} µs).",
        f"- At peak: {r['opens']:,.0f} socket opens/s, {r['moves']:,.0f} `subscribe` moves/s, "
        f"{r['pings']:,.0f} pings/s, {r['polls']:,.0f} console polls/s, {r['profiles']:,.0f} "
        f"shop-profile fetches/s; a console poll walks {r['poll_cells']:,.0f} presence cells "
        f"per poll ({len(np.unique(sim.cells)):,} occupied cells in the city).",
        *(presence_lines(label, s, m) for label, s in (("city", city), ("country", country))),
        f"- Country: {len(split)} towns have a region too big for one shard and are split "
        f"(ranks {', '.join(str(t[0]) for t in split)} into "
        f"{', '.join(str(t[3]) for t in split)} regions).",
        f"- Midnight: {report.midnight['city']:,.0f} posts (city), "
        f"{report.midnight['country']:,.0f} (country) end in the same second (end of the local "
        f"day), each an arq job, a remove script and a tombstone frame: at ~"
        f"{ARQ_JOBS_PER_S:,.0f} jobs/s (estimate) one scheduler needs "
        f"{report.midnight['country'] / ARQ_JOBS_PER_S / 60:,.1f} min to drain the country's.",
        "", "#### Where the cores and the bytes go", ""]
    out += breakdown(city, country)
    out += ["", "#### Sensitivity", "",
            "| variant | city: gateway cores / processes / memory; API processes | city: "
            "shards (regions added) / Valkey cores / Redis memory | country: gateway cores / "
            "processes / memory; API processes | country: shards / Redis memory |",
            "|---|---|---|---|---|"]
    for name, c, k in report.sensitivity:
        country_cells = (f"{k.gateway_cores:,} / {k.gateway_processes:,} / "
                         f"{_gib(k.gateway_memory)}; {k.api_processes:,} | {k.shards:,} / "
                         f"{_gib(k.redis_memory)}" if k is not None else "(city only) | ")
        out.append(f"| {name} | {c.gateway_cores:,} / {c.gateway_processes:,} / "
                   f"{_gib(c.gateway_memory)}; {c.api_processes:,} | {c.shards:,} "
                   f"(+{c.region_splits}) / {c.valkey_cores:.2f} / {_gib(c.redis_memory)} | "
                   f"{country_cells} |")
    out += ["", "#### Assumptions (`Model` in bench/capacity.py)", "", "| parameter | value |",
            "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in asdict(m).items()]
    out.append(
        f"| read from the code | ping every {SETTINGS.gateway_ping_interval_s:g} s; presence "
        f"flush every {PRESENCE_FLUSH_S:g} s per process; a move every {MOVE_THRESHOLD_M:g} m; "
        f"console poll every {CONSOLE_POLL_S:g} s ({CONSOLE_HIDDEN_POLL_S:g} s hidden); "
        f"snapshot limit {SETTINGS.snapshot_limit}; feed_maxlen {SETTINGS.feed_maxlen:,}; "
        f"cells {SETTINGS.geo_cell_deg}°, presence cells {PRESENCE_CELL_DEG}°; screen radius "
        f"{SCREEN_RADIUS_M:g} m; phone default radius {PHONE_DEFAULT_RADIUS_M:g} m |")
    return "\n".join(out)


def write_doc(text: str) -> None:
    if DOC.exists():
        doc = DOC.read_text(encoding="utf-8")
        if BEGIN in doc and END in doc:
            head, rest = doc.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            DOC.write_text(f"{head}{BEGIN}\n\n{text}\n\n{END}{tail}", encoding="utf-8")
            return
        raise SystemExit(f"capacity: {DOC} lacks the generated-part markers")
    DOC.write_text(f"# Capacity\n\n{BEGIN}\n\n{text}\n\n{END}\n", encoding="utf-8")


def plot(report: Report) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    rec = np.sort(report.city_sim.peak.recipients)
    a.plot(rec, np.linspace(0, 1, len(rec)), color="#1f6f8b")
    a.axvline(report.city.recipients_p99, color="#c0392b", ls="--", lw=1,
              label=f"p99 = {report.city.recipients_p99:,.0f}")
    a.set_xlabel("recipients of one post (city, peak hour)")
    a.set_ylabel("share of posts")
    a.legend(loc="lower right")
    a.grid(alpha=0.3)
    towns = report.country.per_town
    ranks = [t[0] for t in towns]
    b.loglog(ranks, [t[1] for t in towns], "o", ms=3, label="gateway CPU (cores)")
    b.loglog(ranks, [t[2] for t in towns], "s", ms=3,
             label="Valkey CPU of its region, unsplit (cores)")
    b.axhline(report.model.shard_max_core, color="#c0392b", ls="--", lw=1,
              label="one shard's budget")
    b.set_xlabel("town rank (1 = the city)")
    b.legend(loc="lower left", fontsize=8)
    b.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)


def print_report(report: Report) -> None:
    print()
    print(f"{'':64} {'city':>24} {'country':>24}")
    for (name, a), (_, b) in zip(table_rows(report.city), table_rows(report.country),
                                 strict=True):
        print(f"{name.replace('*', ''):64.64} {a.replace('*', ''):>24} {b.replace('*', ''):>24}")
    print()
    for label, s in (("city", report.city), ("country", report.country)):
        top = sorted(s.gateway_items.items(), key=lambda kv: -kv[1])[:4]
        print(f"{label} gateway CPU: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
        top = sorted(s.api_items.items(), key=lambda kv: -kv[1])[:3]
        print(f"{label} API CPU: " + ", ".join(f"{k} {v:.1f}" for k, v in top))
        top = sorted(s.valkey_items.items(), key=lambda kv: -kv[1])[:4]
        print(f"{label} Valkey CPU: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    print()
    for name, c, k in report.sensitivity:
        country = (f"country {k.gateway_cores:>5} gw cores {k.gateway_processes:>5} procs "
                   f"{k.api_processes:>4} api {k.shards:>4} shards" if k is not None else "")
        print(f"{name:52.52} city {c.gateway_cores:>4} gw cores {c.gateway_processes:>3} procs "
              f"{c.api_processes:>4} api {c.shards:>3} shards  {country}")
    print(f"\n{report.elapsed_s:.1f} s")


# --- Probe: the figures the benchmark does not give ---------------------------------------------
#
# Loopback only: a Valkey from streetfeed.embedded.server_binary() on a Unix socket in a
# temporary directory, loaded with the city's live posts through the real publish script,
# and one `streetfeed web` process on a free local port. Both are stopped at the end.

_SHOP_CATEGORIES = ("boulangerie", "fromagerie", "librairie", "fleuriste", "epicerie",
                    "caviste", "primeur", "boucherie", "disquaire", "quincaillerie")


def probe(rank: int = 1, sockets: int = 300) -> dict[str, float | str]:  # pragma: no cover
    """Measure PROBE's figures against a local Valkey and one `streetfeed web` process,
    loaded with the live posts of the country's town of that rank (1: the city)."""
    workdir = Path(tempfile.mkdtemp(prefix="capacity-probe-"))
    try:
        return asyncio.run(_probe(workdir, rank, sockets))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _received(ws: Any) -> str:
    """A feed socket's next frame; 30 s without one stops the probe rather than hang it."""
    try:
        return str(await asyncio.wait_for(ws.recv(), 30))
    except TimeoutError:
        raise SystemExit("probe: a feed socket sent nothing for 30 s") from None


def _say(text: str) -> None:
    """Where the probe is (stderr: stdout is the figures)."""
    print(f"[probe {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _cpu(proc: Any) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _commandstats(sync: Any, command: str) -> tuple[int, int]:
    stats = sync.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


@contextlib.contextmanager
def _started(args: list[str], env: dict[str, str] | None = None) -> Iterator[Any]:
    import psutil

    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def _probe(workdir: Path, rank: int, n_sockets: int) -> dict[str, float | str]:
    # pragma: no cover
    import socket as socketlib

    from redis import Redis as SyncRedis
    from redis.asyncio import Redis

    from streetfeed.embedded import server_binary

    sock = workdir / "redis.sock"
    args = [server_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
            "--dir", str(workdir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "no", "--loglevel", "warning"]
    out: dict[str, float | str] = {"measured": time.strftime("%Y-%m-%d") + ", "
                                   f"{os.cpu_count()} CPUs, `python -m bench.capacity --probe`"}
    with _started(args) as valkey:
        for _ in range(100):
            if sock.exists():
                break
            await asyncio.sleep(0.05)
        sync = SyncRedis(unix_socket_path=str(sock))
        redis = Redis(unix_socket_path=str(sock))
        for _ in range(100):
            try:
                if sync.ping():
                    break
            except Exception:
                await asyncio.sleep(0.05)
        try:
            # 1. One simple command, awaited alone as the product does, from 16 clients at
            # once (a busy shard serves many); and from one client, one at a time, where
            # every command wakes the server (the worst case, for reference).
            sync.set("probe:k", "v")
            before = _cpu(valkey)
            for _ in range(20_000):
                sync.get("probe:k")
            out["valkey_us_per_cmd_sequential"] = round((_cpu(valkey) - before) / 20_000 * 1e6, 2)
            clients = Redis(unix_socket_path=str(sock), max_connections=16)

            async def gets(n: int) -> None:
                for _ in range(n):
                    await clients.get("probe:k")

            before = _cpu(valkey)
            await asyncio.gather(*(gets(2_500) for _ in range(16)))
            out["valkey_us_per_cmd"] = round((_cpu(valkey) - before) / 40_000 * 1e6, 2)
            await clients.aclose()
            _say("loading the town's shops and live posts")
            city = await _probe_populate(redis, sync, out, rank)
            _say("snapshot script")
            _probe_snapshots(sync, redis, city, out)
            _say("memory, remove script")
            await _probe_memory(redis, sync, city, out)
            _say("presence PUBLISH")
            await _probe_presence_publish(sock, valkey, city, out)
            port = _free_port(socketlib)
            env = {**os.environ, "REDIS_URL": f"unix://{sock}",
                   "STREETFEED_ADDRESS_SOCKETS_PER_MINUTE": "10000000",
                   "STREETFEED_MAX_SOCKETS_PER_ADDRESS": "1000000",
                   "STREETFEED_ADDRESS_REQUESTS_PER_MINUTE": "10000000"}
            web_args = [sys.executable, "-m", "streetfeed.cli", "web", "--port", str(port)]
            with _started(web_args, env) as web:
                await _probe_gateway(redis, sync, sock, valkey, web, port, city, out,
                                     n_sockets)
        finally:
            await redis.aclose()
            sync.close()
    return out


def _free_port(socketlib: Any) -> int:  # pragma: no cover
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _ProbeCity:
    pop: Population
    live: np.ndarray
    shops: list[Any]             # ShopRecord
    tokens: list[str]
    post_ids: list[tuple[str, str]]  # (post id, shop id)


async def _probe_populate(redis: Any, sync: Any, out: dict[str, float | str],
                          rank: int) -> _ProbeCity:
    """The city's shops and live posts, through create_shop and the real publish script."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    import msgspec

    from rules.clock import SystemClock
    from rules.enrich import Enriched, enrich
    from schemas.posts import FlashOfferIn, NewArrivalIn, OpeningChangeIn, PostIn, RawPost
    from schemas.shops import NewShop
    from services.shops import create_shop
    from storage.inbox import new_post_id
    from storage.live import LiveIndex
    from storage.shops import get_shop

    model = Model()
    town = country_towns(model)[rank - 1]
    pop = make_population(model, town)
    live = live_posts_per_shop(model, np.random.default_rng([model.seed, town.rank, 5]),
                               town.shops)
    clock = SystemClock()
    created = []
    for start in range(0, town.shops, 200):
        created += await asyncio.gather(*(
            create_shop(redis, NewShop(
                name=f"{_SHOP_CATEGORIES[i % 10].capitalize()} de la rue {i:04d}",
                category=_SHOP_CATEGORIES[i % 10], lat=float(pop.shop_lat[i]),
                lon=float(pop.shop_lon[i]), address=f"{i % 120 + 1} rue du Marché"),
                region=SETTINGS.region, clock=clock)
            for i in range(start, min(town.shops, start + 200))))
    shops = [await get_shop(redis, c.id) for c in created]
    index = LiveIndex(redis, SETTINGS.region, SETTINGS)
    policy = SETTINGS.moderation_policy()
    tz = ZoneInfo(SETTINGS.timezone)
    now = datetime.now(UTC)
    text = ("Arrivage du jour, directement du producteur : quantités limitées, "
            "venez tôt. Paiement sans contact accepté.")

    def body(kind: int, n: int) -> PostIn:
        if kind == 0:
            return NewArrivalIn(title=f"Fraises de Plougastel, barquette 500 g ({n})",
                                text=text, price=4.5, tags=["local", "bio"])
        if kind == 1:
            return FlashOfferIn(title=f"-20 % sur les fromages de chèvre ({n})", text=text,
                                ends_at=now + timedelta(hours=2), price=3.2, discount_pct=20)
        return OpeningChangeIn(title="Ouvert jusqu'à 21:00", status="open_late",
                               until=now + timedelta(hours=3))

    jobs = []
    for s, shop in enumerate(shops):
        for kind in range(3):
            for n in range(int(live[s, kind])):
                raw = RawPost(id=new_post_id(), shop_id=shop.id, accepted_at=now,
                              body=body(kind, n))
                enriched = enrich(raw, shop, now=now, tz=tz, policy=policy)
                assert isinstance(enriched, Enriched)
                jobs.append((raw, enriched))
    sync.config_resetstat()
    seq = 0
    post_ids = []
    for start in range(0, len(jobs), 200):
        batch = jobs[start:start + 200]
        await asyncio.gather(*(
            index.publish(post_id=raw.id, source=f"{seq + j + 1}-0", post_json=e.json,
                          kind=e.kind, lat=e.lat, lon=e.lon, expires_ts=e.expires_ts,
                          shop_id=raw.shop_id, raw=msgspec.json.encode(raw))
            for j, (raw, e) in enumerate(batch)))
        seq += len(batch)
        post_ids += [(raw.id, raw.shop_id) for raw, _ in batch]
    calls, usec = _commandstats(sync, "evalsha")
    out["publish_us"] = round(usec / max(1, calls), 1)
    return _ProbeCity(pop=pop, live=live, shops=shops, tokens=[c.token for c in created],
                      post_ids=post_ids)


def _in_radius(city: _ProbeCity, lat: float, lon: float, radius: float) -> int:
    s_lat = np.radians(city.pop.shop_lat)
    h = (np.sin((s_lat - math.radians(lat)) / 2) ** 2 + math.cos(math.radians(lat))
         * np.cos(s_lat) * np.sin((np.radians(city.pop.shop_lon) - math.radians(lon)) / 2) ** 2)
    dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return int(city.live.sum(axis=1)[dist <= radius].sum())


def _probe_snapshots(sync: Any, redis: Any, city: _ProbeCity,
                     out: dict[str, float | str]) -> None:  # pragma: no cover
    """The snapshot script's cost against the number of live posts around the phone."""
    from storage import keys

    script = sync.register_script(_snapshot_source())
    rng = np.random.default_rng(17)
    phones = rng.choice(np.nonzero(~city.pop.screen)[0], 500)
    rows = []
    for i in phones:
        lat, lon = float(city.pop.lat[i]), float(city.pop.lon[i])
        radius = float(city.pop.radius[i]) * 1.001 + 1
        sync.config_resetstat()
        reply = script(keys=[keys.active_geo(SETTINGS.region), keys.feed_stream(SETTINGS.region)],
                       args=[repr(lon), repr(lat), repr(radius), SETTINGS.snapshot_limit,
                             keys.post(SETTINGS.region, "")])
        _, usec = _commandstats(sync, "evalsha")
        rows.append((1.0, _in_radius(city, lat, lon, radius), len(reply) - 1, usec))
    a = np.array(rows)
    coef, *_ = np.linalg.lstsq(a[:, :3], a[:, 3], rcond=None)
    out["snapshot_us_fixed"] = round(float(coef[0]), 1)
    out["snapshot_us_per_post_in_radius"] = round(float(coef[1]), 4)
    out["snapshot_us_per_returned"] = round(float(coef[2]), 3)
    out["snapshot_us_mean"] = round(float(a[:, 3].mean()), 1)
    out["snapshot_in_radius_mean"] = round(float(a[:, 1].mean()), 1)


def _snapshot_source() -> str:
    from storage import live

    return live._SNAPSHOT


async def _probe_memory(redis: Any, sync: Any, city: _ProbeCity,
                        out: dict[str, float | str]) -> None:  # pragma: no cover
    from storage import keys
    from storage.live import LiveIndex

    region = SETTINGS.region
    n_live = len(city.post_ids)
    rng = np.random.default_rng(5)
    sample = rng.choice(n_live, min(400, n_live), replace=False)
    post_hash = np.mean([sync.memory_usage(keys.post(region, city.post_ids[i][0]), samples=0)
                         for i in sample])
    geo = sync.memory_usage(keys.active_geo(region), samples=0) / n_live
    expiry = sync.memory_usage(keys.expiry_zset(region), samples=0) / n_live
    shop_sets = [keys.shop_posts(region, s.id) for s in city.shops[:500]]
    in_sets = sum(int(sync.scard(k)) for k in shop_sets)
    per_set = sum(int(sync.memory_usage(k, samples=0) or 0) for k in shop_sets) / max(1, in_sets)
    out["live_post_bytes"] = round(float(post_hash + geo + expiry + per_set))
    feed = keys.feed_stream(region)
    out["feed_post_entry_bytes"] = round(sync.memory_usage(feed, samples=0) / sync.xlen(feed))
    # Tombstones: withdraw 1,000 posts through the real remove script.
    index = LiveIndex(redis, region, SETTINGS)
    stream_before = sync.memory_usage(feed, samples=0)
    sync.config_resetstat()
    for post_id, shop_id in city.post_ids[-1000:]:
        await index.remove(post_id, "withdrawn", now_ts=time.time(), shop_id=shop_id)
    calls, usec = _commandstats(sync, "evalsha")
    out["remove_us"] = round(usec / max(1, calls), 1)
    out["feed_tombstone_entry_bytes"] = round(
        (sync.memory_usage(feed, samples=0) - stream_before) / 1000)
    del city.post_ids[-1000:]
    reach = keys.reach(region, "p_probe")
    sync.hincrby(reach, "phone", 4321)
    sync.hincrby(reach, "screen", 12)
    sync.expire(reach, 3600)
    out["reach_bytes"] = int(sync.memory_usage(reach, samples=0))
    out["shop_bytes"] = round(float(np.mean([sync.memory_usage(keys.shop(s.id), samples=0)
                                             for s in city.shops[:300]])) + 16)
    # Presence has no memory to measure: it is published (Pub/Sub), never written to a key.


# A presence report of the probe: this many of the city's occupied cells (a gateway process
# of the city holds ~6,500; a listener folds every gateway's), as one fake gateway.
_PROBE_REPORT_CELLS = 20_000


def _encode_empty_report(gateway: str) -> bytes:
    """What a gateway leaving publishes: listeners drop its counts at once."""
    from feed.stats import _encode
    from schemas.presence import PresenceReport

    return _encode(PresenceReport(gateway=gateway))


def _probe_report(city: _ProbeCity, gateway: str, extra: tuple[int, int] | None = None,
                  limit: int = _PROBE_REPORT_CELLS) -> tuple[bytes, int]:
    """(the encoded PresenceReport, its cells): the city's cells and their phones, encoded
    by feed.stats's encoder; `extra` (cell, count) replaces the last cell."""
    from feed.stats import _encode
    from schemas.presence import PresenceReport

    cells, counts = np.unique(presence_cells(city.pop.lat[~city.pop.screen],
                                             city.pop.lon[~city.pop.screen]), return_counts=True)
    pairs = [(int(c), int(n)) for c, n in zip(cells, counts, strict=True)]
    pairs = pairs[:limit]
    if extra is not None:
        pairs = [*[p for p in pairs if p[0] != extra[0]][:limit - 1], extra]
    return _encode(PresenceReport(gateway=gateway, cells=pairs)), len(pairs)


async def _probe_presence_publish(sock: Path, vproc: Any, city: _ProbeCity,
                                  out: dict[str, float | str]) -> None:  # pragma: no cover
    """PUBLISH of a presence report (feed/stats.py): the gateway's CPU to build and encode
    it, and Valkey's CPU per report and per cell with nobody listening, and per listening
    process (raw subscribers here that only drain their socket, so Valkey's side alone is
    seen; the web process's side is measured in _probe_gateway)."""
    from collections import Counter

    import msgspec

    from feed.stats import _encode
    from schemas.presence import PresenceReport
    from storage import keys

    channel = keys.presence_channel(SETTINGS.region)
    report, n_cells = _probe_report(city, "probe-fake")
    out["presence_bytes_per_cell"] = round(len(report) / n_cells, 1)
    # What StatsPublisher does per flush: the counts as a list, one report, encoded once.
    counter = Counter(dict(msgspec.json.decode(report, type=PresenceReport).cells))
    t0 = time.process_time()
    for _ in range(50):
        _encode(PresenceReport(gateway="probe-fake", cells=list(counter.items())))
    out["gw_presence_encode_us_per_cell"] = round((time.process_time() - t0) / 50 / n_cells
                                                  * 1e6, 4)
    small = _encode(PresenceReport(gateway="probe-fake", cells=[next(iter(counter.items()))]))

    async def valkey_per_publish(message: bytes, rounds: int, listeners: int) -> float:
        """Valkey CPU per PUBLISH of `message` with that many subscribers draining it."""
        from redis.asyncio import Redis

        frame = (f"*3\r\n$7\r\nmessage\r\n${len(channel)}\r\n{channel}\r\n"
                 f"${len(message)}\r\n").encode() + message + b"\r\n"
        streams = []
        for _ in range(listeners):
            reader, writer = await asyncio.open_unix_connection(str(sock), limit=2**22)
            writer.write(f"*2\r\n$9\r\nSUBSCRIBE\r\n${len(channel)}\r\n{channel}\r\n"
                         .encode())
            await writer.drain()
            await reader.readuntil(b":1\r\n")   # the subscribe confirmation
            streams.append((reader, writer))

        async def drain(reader: asyncio.StreamReader) -> None:
            got = 0
            while got < rounds * len(frame):
                chunk = await reader.read(2**20)
                if not chunk:
                    raise SystemExit("probe: a presence subscriber was disconnected")
                got += len(chunk)

        client = Redis(unix_socket_path=str(sock))
        before = _cpu(vproc)
        drains = [asyncio.create_task(drain(reader)) for reader, _ in streams]
        for _ in range(rounds):
            await client.publish(channel, message)
        await asyncio.wait_for(asyncio.gather(*drains), 60)
        spent = (_cpu(vproc) - before) / rounds
        await client.aclose()
        for _, writer in streams:
            writer.close()
        return spent

    # Per report and per cell, with nobody listening and with 4 listeners: a 1-cell report
    # gives the per-report part, a 20,000-cell one the per-cell part.
    listeners = 4
    alone_small = await valkey_per_publish(small, 2_000, 0)
    fanned_small = await valkey_per_publish(small, 2_000, listeners)
    alone = await valkey_per_publish(report, 100, 0)
    fanned = await valkey_per_publish(report, 100, listeners)
    per_report = (fanned_small - alone_small) / listeners
    out["valkey_publish_us_per_cell"] = round((alone - alone_small) / n_cells * 1e6, 4)
    out["valkey_fanout_us_per_report_per_listener"] = round(per_report * 1e6, 3)
    out["valkey_fanout_us_per_cell_per_listener"] = round(
        ((fanned - alone) / listeners - per_report) / n_cells * 1e6, 4)
    out["valkey_publish_us_small_report"] = round(alone_small * 1e6, 2)   # (reference)


async def _probe_gateway(redis: Any, sync: Any, sock: Path, valkey: Any, web: Any, port: int,
                         city: _ProbeCity, out: dict[str, float | str],
                         n: int) -> None:  # pragma: no cover
    import http.client
    import threading

    import websockets

    from storage import keys
    from storage.live import LiveIndex

    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30)]

    def request(method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> int:
        return exchange(method, path, body, headers)[0]

    def exchange(method: str, path: str, body: str | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        # Keep-alive, reopened when the server has closed an idle connection.
        for attempt in (0, 1):
            try:
                conns[0].request(method, path, body=body, headers=headers or {})
                response = conns[0].getresponse()
                return int(response.status), response.read()
            except (OSError, http.client.HTTPException):
                conns[0].close()
                conns[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(path: str, token: str | None = None) -> None:
        status = request("GET", path, headers={"Authorization": f"Bearer {token}"} if token
                         else None)
        if status != 200:
            raise SystemExit(f"probe: GET {path} -> {status}")

    for _ in range(200):
        try:
            get("/healthz")
            break
        except (OSError, http.client.HTTPException, SystemExit):
            await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)
    out["web_rss_kib_idle"] = round(web.memory_info().rss / 1024)
    # The console's shop, with the mean number of live posts. Its first request makes this
    # process listen to the region's presence (feed/presence.py), as every process answering
    # consoles does at peak; the idle CPU below includes that listening, nobody publishing.
    per_shop = city.live.sum(axis=1)
    typical = int(np.argmin(np.abs(per_shop - per_shop.mean())))
    token, shop_id = city.tokens[typical], city.shops[typical].id
    get(f"/api/v1/shops/{shop_id}/stats", token)
    channel = keys.presence_channel(SETTINGS.region)
    if int(dict(sync.pubsub_numsub(channel)).get(channel.encode(), 0)) < 1:
        raise SystemExit("probe: the web process does not listen to presence after a console")
    t0, c0 = time.perf_counter(), _cpu(web)
    await asyncio.sleep(3.0)
    idle = (_cpu(web) - c0) / (time.perf_counter() - t0)

    def busy(c_before: float, t_before: float) -> float:
        """The web process's CPU since then, less what it burns idle."""
        return _cpu(web) - c_before - idle * (time.perf_counter() - t_before)

    region = SETTINGS.region
    rng = np.random.default_rng(23)
    phones = np.nonzero(~city.pop.screen)[0]
    candidates = rng.choice(phones, min(len(phones), 20 * n), replace=False)
    around = sorted((_in_radius(city, float(city.pop.lat[i]), float(city.pop.lon[i]),
                                float(city.pop.radius[i]) * 1.001 + 1), int(i))
                    for i in candidates)
    # Few posts around (the outskirts) and a full snapshot (the centre).
    sparse = [i for _, i in around[:n]]
    dense = [i for _, i in around[-2 * n:]]
    sockets: list[Any] = []

    async def open_one(i: int, lat_shift: float = 0.0) -> int:
        url = (f"ws://127.0.0.1:{port}/ws/feed?lat={city.pop.lat[i] + lat_shift:.7f}"
               f"&lon={city.pop.lon[i]:.7f}&radius_m={city.pop.radius[i]:g}")
        ws = await websockets.connect(url, compression=None, ping_interval=None,
                                      max_size=2**20, open_timeout=30, close_timeout=1)
        sockets.append(ws)
        frames = 0
        while True:
            message = json.loads(await _received(ws))
            if message["type"] == "ping":
                return frames
            frames += message["type"] == "post"

    async def batch(items: list[Any], call: Callable[[Any], Any]) -> list[int]:
        gate = asyncio.Semaphore(16)

        async def one(item: Any) -> int:
            async with gate:
                return int(await call(item))

        return list(await asyncio.gather(*(one(x) for x in items)))

    _say("web: feed entry read")
    # A feed entry read and dispatched with nobody to deliver to (one socket, far away),
    # from a shop of its own (its posts must not weigh on the console polled below).
    await open_one(int(phones[0]), lat_shift=0.5)
    index = LiveIndex(redis, region, SETTINGS)
    shop = city.shops[-1]
    entry = sync.hget(keys.post(region, city.post_ids[0][0]), "json")
    t0, c0 = time.perf_counter(), _cpu(web)
    for j in range(400):
        await index.publish(post_id=f"p_probe{j:04d}", source=f"9{j:05d}-0", post_json=entry,
                            kind="new_arrival", lat=shop.lat + 0.6, lon=shop.lon,
                            expires_ts=time.time() + 3600, shop_id="probe-reader",
                            raw=b"{}")
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.5)
    out["gw_read_us"] = round(busy(c0, t0) / 400 * 1e6, 1)

    _say("web: console polls")
    # Console polls with no presence cells yet (the web process's own socket aside).
    out["poll_shop_live_posts"] = int(per_shop[typical])

    def polls(n: int) -> tuple[float, float]:
        t1, c1, v1 = time.perf_counter(), _cpu(web), _cpu(valkey)
        for _ in range(n):
            get(f"/api/v1/shops/{shop_id}/stats", token)
            get(f"/api/v1/shops/{shop_id}/posts")
        return busy(c1, t1) / n, (_cpu(valkey) - v1) / n

    polls(20)
    poll0, vpoll0 = polls(150)
    out["poll_ms"] = round(poll0 * 1e3, 3)
    out["valkey_poll_us"] = round(vpoll0 * 1e6, 1)

    _say("web: presence reports heard")
    # A fake gateway publishes reports of the city's cells on the region's channel, the shop's
    # own cell with 7 watchers among them, 5 reports a second (a listener in the city hears
    # ~21): the listening web process's CPU to receive, decode and keep them.
    shop_cell = int(presence_cells(np.array([city.shops[typical].lat]),
                                   np.array([city.shops[typical].lon]))[0])
    report, n_cells = _probe_report(city, "probe-fake", extra=(shop_cell, 7))

    async def heard(message: bytes, count: int, every_s: float) -> float:
        """The web process's CPU per report received, `count` of them `every_s` apart."""
        t0, c0 = time.perf_counter(), _cpu(web)
        for _ in range(count):
            await redis.publish(channel, message)
            await asyncio.sleep(every_s)
        await asyncio.sleep(0.5)
        return busy(c0, t0) / count

    per_big = await heard(report, 30, 0.2)
    status, body = exchange("GET", f"/api/v1/shops/{shop_id}/stats",
                            headers={"Authorization": f"Bearer {token}"})
    nearest = json.loads(body)["watching"][0] if status == 200 else {}
    if not (nearest.get("count") or 0) >= 7:
        raise SystemExit(f"probe: the fake gateway's report was not folded in ({nearest})")
    # The per-report part: 1-cell reports of another fake gateway, 200 a second.
    small, _ = _probe_report(city, "probe-small", limit=1)
    per_report = await heard(small, 600, 0.005)
    await redis.publish(channel, _encode_empty_report("probe-small"))
    decode_s = (per_big - per_report) / n_cells
    out["listener_us_per_report"] = round(per_report * 1e6, 1)
    out["listener_decode_us_per_cell"] = round(decode_s * 1e6, 4)

    _say("web: console polls with presence in memory")
    # Console polls with those cells in memory, the fake gateway publishing twice a second
    # meanwhile (from a thread: the polls block this loop) so that it stays live; what its
    # reports cost the web process (per_big) is taken off.
    stop = threading.Event()
    published = [0]

    def keep_publishing() -> None:
        from redis import Redis as SyncRedis

        client = SyncRedis(unix_socket_path=str(sock))
        while not stop.is_set():
            client.publish(channel, report)
            published[0] += 1
            stop.wait(0.5)
        client.close()

    thread = threading.Thread(target=keep_publishing, daemon=True)
    thread.start()
    await asyncio.sleep(0.2)
    first = published[0]
    n_polls = 40
    poll1, _ = polls(n_polls)
    reports = published[0] - first
    stop.set()
    thread.join(5)
    await redis.publish(channel, _encode_empty_report("probe-fake"))
    out["poll_us_per_cell_in_memory"] = round(
        (poll1 - poll0 - reports * per_big / n_polls) / n_cells * 1e6, 3)

    _say("web: profiles, posts")
    # Shop profiles, as the passer-by page fetches them.
    t0, c0 = time.perf_counter(), _cpu(web)
    for s in city.shops[:300]:
        get(f"/api/v1/shops/{s.id}")
    out["profile_ms"] = round(busy(c0, t0) / min(300, len(city.shops)) * 1e3, 3)
    # Posts, as a shopkeeper sends them (one per shop: the per-shop limit is 30 a minute).
    t0, c0 = time.perf_counter(), _cpu(web)
    for s, tok in list(zip(city.shops, city.tokens, strict=True))[1:301]:
        status = request("POST", f"/api/v1/shops/{s.id}/posts",
                         body=json.dumps({"kind": "new_arrival", "title": "Arrivage : asperges",
                                          "text": "Des Landes, ce matin.", "price": 6.5}),
                         headers={"Authorization": f"Bearer {tok}",
                                  "Content-Type": "application/json"})
        if status != 202:
            raise SystemExit(f"probe: POST -> {status}")
    out["post_ms"] = round(busy(c0, t0) / min(300, len(city.shops) - 1) * 1e3, 3)
    conns[0].close()

    _say("web: sockets opened")
    # Sockets opened: few posts around (sparse) and a full snapshot (dense).
    t0, c0 = time.perf_counter(), _cpu(web)
    frames_a = await batch(sparse, open_one)
    cpu_a = busy(c0, t0) / len(sparse)
    t0, c0, v0 = time.perf_counter(), _cpu(web), _cpu(valkey)
    frames_b = await batch(dense[:n], open_one)
    cpu_b = busy(c0, t0) / n
    out["valkey_open_us_dense"] = round((_cpu(valkey) - v0) / n * 1e6, 1)
    fa, fb = float(np.mean(frames_a)), float(np.mean(frames_b))
    frame = (cpu_b - cpu_a) / (fb - fa) if fb - fa >= 5 else float("nan")
    out["gw_frame_us"] = round(frame * 1e6, 2)
    out["gw_open_ms"] = round((cpu_a - fa * frame) * 1e3, 3)
    out["frames_sparse"] = round(fa, 1)
    out["frames_dense"] = round(fb, 1)

    _say("web: moves")
    # Moves of the dense sockets to other dense places.
    movers = sockets[-n:]

    async def move(pair: tuple[Any, int]) -> int:
        ws, i = pair
        await ws.send(json.dumps({"type": "subscribe", "lat": float(city.pop.lat[i]),
                                  "lon": float(city.pop.lon[i]),
                                  "radius_m": float(city.pop.radius[i])}))
        frames = 0
        while True:
            message = json.loads(await _received(ws))
            if message["type"] == "ping":
                return frames
            frames += message["type"] == "post"

    t0, c0 = time.perf_counter(), _cpu(web)
    frames_m = await batch(list(zip(movers, dense[n:], strict=False)), move)
    cpu_m = busy(c0, t0) / len(frames_m)
    out["gw_move_ms"] = round((cpu_m - float(np.mean(frames_m)) * frame) * 1e3, 3)
    # All at once, each given a second: one by one, sockets the server has already closed
    # take the client's close timeout each (minutes for hundreds).
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- Main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/capacity.md")
    parser.add_argument("--no-plot", action="store_true", help="do not redraw docs/capacity.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the sizing as JSON")
    parser.add_argument("--probe", action="store_true",
                        help="measure the PROBE figures on a local Valkey + streetfeed web")
    parser.add_argument("--probe-town", type=int, default=1,
                        help="load the probe with this town's posts (1: the city)")
    parser.add_argument("--probe-sockets", type=int, default=300,
                        help="sockets per probe batch")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe_town, args.probe_sockets), indent=2))
        return 0
    measured = load_measured(args.results)
    model = Model(seed=args.seed)

    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[capacity {time.perf_counter() - started:5.1f} s] {text}", file=sys.stderr,
              flush=True)

    report = run(model, measured, progress=progress)
    print_report(report)
    if not args.no_doc:
        write_doc(render(report))
        print(f"wrote the generated part of {DOC.relative_to(ROOT)}")
    if not args.no_plot:
        plot(report)
        print(f"wrote {PLOT.relative_to(ROOT)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"city": asdict(report.city),
                                         "country": asdict(report.country)}, indent=1,
                                        default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

