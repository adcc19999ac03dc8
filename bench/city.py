"""The benchmark's city: subscribers, shops and posts, and who should get what.

Positions follow a realistic density, denser in the centre: a mixture of a
dense core (2D normal, sigma ~1 km) and a wider spread over the agglomeration
(sigma ~3 km), cut at 7 km from the centre. Shops cluster more tightly around
the centre than passers-by. Every draw comes from a seeded generator, so the
same N and seed give the same city in every scenario of a run.

Who should receive a post is decided here with `rules.geo.haversine_m` (Earth
radius 6,371,008.8 m), exactly as the issue asks: distance to the shop within
the subscriber's radius, and the post's kind in the subscriber's kinds (when
given).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from rules.geo import EARTH_RADIUS_M, haversine_m

# Bordeaux, place de la Comédie: a city-sized area around it.
CENTRE = (44.8425, -0.5747)
CITY_RADIUS_M = 7_000.0
RADIUS_MIN_M = 200.0
RADIUS_MAX_M = 1_000.0
KINDS = ("new_arrival", "flash_offer", "opening_change")
# Share of posts by kind.
KIND_WEIGHTS = (0.6, 0.3, 0.1)
# Subscriptions: most want everything; some filter by kind.
KIND_FILTERS: tuple[tuple[tuple[str, ...] | None, float], ...] = (
    (None, 0.70),
    (("flash_offer",), 0.15),
    (("new_arrival", "flash_offer"), 0.10),
    (("opening_change",), 0.05),
)
SHOPS = 300
_M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0


@dataclass(frozen=True, slots=True)
class Subscriber:
    idx: int
    lat: float
    lon: float
    radius_m: float
    kinds: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Shop:
    idx: int
    name: str
    category: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class PlannedPost:
    """One post a shop will send; `seq` is its place in the run's plan."""

    seq: int
    shop: int
    kind: str
    title: str

    def body(self, now: datetime | None = None) -> dict[str, object]:
        """The JSON body of `POST /api/v1/shops/{id}/posts` for this post."""
        body: dict[str, object] = {"kind": self.kind, "title": self.title}
        if self.kind == "flash_offer":
            now = now or datetime.now(UTC)
            body["ends_at"] = (now + timedelta(hours=2)).isoformat()
            body["discount_pct"] = 20
        elif self.kind == "opening_change":
            body["status"] = "open_late"
        else:
            body["price"] = 3.5
            body["tags"] = ["local"]
        return body


def _point(rng: random.Random, core_share: float, core_sigma_m: float,
           wide_sigma_m: float, limit_m: float) -> tuple[float, float]:
    while True:
        sigma = core_sigma_m if rng.random() < core_share else wide_sigma_m
        x = rng.gauss(0.0, sigma)
        y = rng.gauss(0.0, sigma)
        if x * x + y * y <= limit_m * limit_m:
            break
    lat = CENTRE[0] + y / _M_PER_DEG_LAT
    lon = CENTRE[1] + x / (_M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0])))
    return round(lat, 7), round(lon, 7)


def make_subscribers(n: int, seed: int = 1) -> list[Subscriber]:
    rng = random.Random(f"subscribers-{seed}")
    filters = [f for f, _ in KIND_FILTERS]
    weights = [w for _, w in KIND_FILTERS]
    subs = []
    for i in range(n):
        lat, lon = _point(rng, 0.55, 1_000.0, 3_000.0, CITY_RADIUS_M)
        radius = round(rng.uniform(RADIUS_MIN_M, RADIUS_MAX_M), 1)
        kinds = rng.choices(filters, weights)[0]
        subs.append(Subscriber(i, lat, lon, radius, kinds))
    return subs


_CATEGORIES = ("boulangerie", "fromagerie", "librairie", "fleuriste", "epicerie", "caviste",
               "primeur", "boucherie", "disquaire", "quincaillerie")


def make_shops(count: int = SHOPS, seed: int = 1) -> list[Shop]:
    rng = random.Random(f"shops-{seed}")
    shops = []
    for i in range(count):
        lat, lon = _point(rng, 0.7, 800.0, 2_500.0, CITY_RADIUS_M - 1_000.0)
        category = _CATEGORIES[i % len(_CATEGORIES)]
        shops.append(Shop(i, f"Bench {category} {i:03d}", category, lat, lon))
    return shops


def make_posts(count: int, shops: int, seed: int, start_seq: int = 0) -> list[PlannedPost]:
    rng = random.Random(f"posts-{seed}-{start_seq}")
    posts = []
    for k in range(count):
        seq = start_seq + k
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        title = f"Bench post {seq:06d}: arrivage du jour, quantites limitees"
        posts.append(PlannedPost(seq, rng.randrange(shops), kind, title))
    return posts


@dataclass
class Audience:
    """For each shop and kind: the subscribers (indices) who should receive its posts."""

    subscribers: list[Subscriber]
    shops: list[Shop]
    by_shop_kind: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)

    @classmethod
    def compute(cls, subscribers: list[Subscriber], shops: list[Shop]) -> Audience:
        audience = cls(subscribers, shops)
        lat = np.radians(np.array([s.lat for s in subscribers]))
        lon = np.radians(np.array([s.lon for s in subscribers]))
        radius = np.array([s.radius_m for s in subscribers])
        wants = {kind: np.array([s.kinds is None or kind in s.kinds for s in subscribers])
                 for kind in KINDS}
        for shop in shops:
            p = math.radians(shop.lat)
            dlat = lat - p
            dlon = lon - math.radians(shop.lon)
            h = np.sin(dlat / 2) ** 2 + np.cos(lat) * math.cos(p) * np.sin(dlon / 2) ** 2
            dist = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
            # numpy for the coarse cut, then the exact reference formula near the edge.
            near = np.nonzero(dist <= radius + 1.0)[0]
            exact = np.array([i for i in near.tolist()
                              if haversine_m(subscribers[i].lat, subscribers[i].lon,
                                             shop.lat, shop.lon) <= subscribers[i].radius_m],
                             dtype=np.int64)
            for kind in KINDS:
                audience.by_shop_kind[(shop.idx, kind)] = (
                    exact[wants[kind][exact]] if exact.size else exact)
        return audience

    def recipients(self, post: PlannedPost) -> np.ndarray:
        return self.by_shop_kind[(post.shop, post.kind)]

    def mean_recipients(self, posts: list[PlannedPost]) -> float:
        if not posts:
            return 0.0
        return sum(len(self.recipients(p)) for p in posts) / len(posts)
