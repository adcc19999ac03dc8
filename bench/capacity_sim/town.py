"""Places: a town's size and spread, the country's towns, and the phones, screens and shops
of one town (the benchmark's density model of bench/city.py, scaled)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.inputs import M_PER_DEG_LAT, SCREEN_RADIUS_M
from bench.city import CENTRE, KIND_FILTERS, KINDS


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
