"""Which subscribers want a post: a cell index plus the exact check.

The cost of a post is the number of subscribers registered in the post's cell,
roughly the number that receive it, not the number of connected sockets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Generic, TypeVar

from feed.geo import EARTH_RADIUS_M, CellGrid

T = TypeVar("T")


class Subscriber(Generic[T]):
    """A subscription's place and filter, with precomputed trigonometry for the hot path."""

    __slots__ = ("_cos_lat", "_lat_r", "_lon_r", "_max_h", "cells", "kinds", "lat", "lon",
                 "radius_m", "target")

    def __init__(self, target: T) -> None:
        self.target = target
        self.cells: list[int] = []
        self.lat = self.lon = self.radius_m = 0.0
        self.kinds: frozenset[str] | None = None
        self._lat_r = self._lon_r = self._cos_lat = self._max_h = 0.0

    def place(self, lat: float, lon: float, radius_m: float,
              kinds: Iterable[str] | None) -> None:
        self.lat, self.lon, self.radius_m = lat, lon, radius_m
        self.kinds = frozenset(kinds) if kinds else None
        self._lat_r = math.radians(lat)
        self._lon_r = math.radians(lon)
        self._cos_lat = math.cos(self._lat_r)
        # Compare haversine terms instead of distances: no asin per candidate.
        half = min(math.pi / 2, radius_m / EARTH_RADIUS_M / 2)
        self._max_h = math.sin(half) ** 2

    def wants(self, kind: str, lat: float, lon: float) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        lat_r = math.radians(lat)
        dlon = math.radians(lon) - self._lon_r
        h = (math.sin((lat_r - self._lat_r) / 2) ** 2
             + self._cos_lat * math.cos(lat_r) * math.sin(dlon / 2) ** 2)
        return h <= self._max_h


class SubscriberIndex(Generic[T]):
    def __init__(self, grid: CellGrid, *, use_cells: bool = True) -> None:
        self.grid = grid
        # With use_cells off every post is checked against every subscriber: the
        # benchmark's "naive" scenario, to show what the cells buy.
        self.use_cells = use_cells
        self._cells: dict[int, set[Subscriber[T]]] = {}
        self._all: set[Subscriber[T]] = set()

    def __len__(self) -> int:
        return len(self._all)

    def add(self, sub: Subscriber[T]) -> None:
        self._all.add(sub)
        if self.use_cells:
            sub.cells = self.grid.cells_covering(sub.lat, sub.lon, sub.radius_m)
            for cell in sub.cells:
                self._cells.setdefault(cell, set()).add(sub)

    def remove(self, sub: Subscriber[T]) -> None:
        self._all.discard(sub)
        for cell in sub.cells:
            members = self._cells.get(cell)
            if members is not None:
                members.discard(sub)
                if not members:
                    del self._cells[cell]
        sub.cells = []

    def move(self, sub: Subscriber[T], lat: float, lon: float, radius_m: float,
             kinds: Iterable[str] | None) -> None:
        self.remove(sub)
        sub.place(lat, lon, radius_m, kinds)
        self.add(sub)

    def matching(self, kind: str, lat: float, lon: float) -> list[Subscriber[T]]:
        """Subscribers that want a post of `kind` at (lat, lon): `Subscriber.wants`, with
        the post's trigonometry done once instead of once per candidate (the hot path)."""
        if self.use_cells:
            candidates: Iterable[Subscriber[T]] = self._cells.get(
                self.grid.cell_of(lat, lon), ())
        else:
            candidates = self._all
        lat_r, lon_r = math.radians(lat), math.radians(lon)
        cos_lat = math.cos(lat_r)
        sin = math.sin
        out = []
        for sub in candidates:
            if sub.kinds is not None and kind not in sub.kinds:
                continue
            h = (sin((lat_r - sub._lat_r) / 2) ** 2
                 + sub._cos_lat * cos_lat * sin((lon_r - sub._lon_r) / 2) ** 2)
            if h <= sub._max_h:
                out.append(sub)
        return out

    def all(self) -> Iterable[Subscriber[T]]:
        return self._all
