"""Who receives a post: exact recipients per shop and kind, checked against the real
SubscriberIndex."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.inputs import SETTINGS
from bench.capacity_sim.town import Population
from bench.city import KIND_WEIGHTS, KINDS
from feed.index import Subscriber, SubscriberIndex
from rules.geo import EARTH_RADIUS_M, CellGrid


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
