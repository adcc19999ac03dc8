"""Which subscribers want a post: a cell index plus the exact check.

The cost of a post is the number of subscribers registered in the post's cell,
roughly the number that receive it, not the number of connected sockets. Each
cell keeps its members' geometry in numpy arrays, so the exact check of a
post against a whole cell is a handful of array operations instead of a
Python loop over ~1,500 candidates (docs/performance.md).

The exact check compares chords instead of angles: a point's unit vector is
computed once (the subscriber's when it is placed, the post's once per post),
and a post is within a subscriber's radius when the squared chord between them
is at most the chord of that radius. That is the haversine test without any
trigonometry per candidate, and the scalar check (`Subscriber.wants`) does the
very same float operations in the same order as the arrays, so both agree bit
for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Generic, TypeVar, get_args

import numpy as np

from rules.geo import EARTH_RADIUS_M, CellGrid
from schemas.posts import Kind

__all__ = ["Subscriber", "SubscriberIndex", "kind_bit", "subscriber_bits"]

T = TypeVar("T")

# What a subscriber takes is a set of (kind, local) pairs, one bit each in a byte: the low
# nibble for posts that are not local, the high one for local posts (those naming a
# producer within STREETFEED_LOCAL_KM of their shop), one bit per kind in each, so the
# `local` filter is matched exactly as the kind filter is, by one AND in the cell's arrays.
# A kind the schema does not know only reaches subscribers that take every kind.
_KIND_BITS = {kind: 1 << i for i, kind in enumerate(get_args(Kind))}
_OTHER_KIND = 0x08
_EVERY_KIND = 0x0F
_LOCAL_SHIFT = 4
assert max(_KIND_BITS.values()) < _OTHER_KIND
# A cell's arrays start this big and double as members arrive.
_MIN_CAPACITY = 8


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    lat_r, lon_r = math.radians(lat), math.radians(lon)
    cos_lat = math.cos(lat_r)
    return cos_lat * math.cos(lon_r), cos_lat * math.sin(lon_r), math.sin(lat_r)


def kind_bit(kind: str, local: bool = False) -> int:
    """A post's bit: its kind, in the local nibble when it is local. A tombstone is matched
    as local (`local=True`): it reaches local subscribers too, which may hold the card
    (an edit can end a post's locality), and clients ignore an id they do not hold."""
    bit = _KIND_BITS.get(kind, _OTHER_KIND)
    return bit << _LOCAL_SHIFT if local else bit


def subscriber_bits(kinds: frozenset[str] | None, local_only: bool) -> int:
    """The (kind, local) pairs a subscription takes: its kinds, local posts only or all."""
    bits = _EVERY_KIND if kinds is None else sum(kind_bit(k) for k in kinds)
    return bits << _LOCAL_SHIFT if local_only else bits | bits << _LOCAL_SHIFT


class Subscriber(Generic[T]):
    """A subscription's place and filter, with its unit vector precomputed for the hot path."""

    __slots__ = ("cells", "kind_bits", "kinds", "lat", "limit", "local", "lon", "radius_m",
                 "target", "x", "y", "z")

    def __init__(self, target: T) -> None:
        self.target = target
        self.cells: list[int] = []
        self.lat = self.lon = self.radius_m = 0.0
        self.kinds: frozenset[str] | None = None
        self.local = False
        self.kind_bits = subscriber_bits(None, False)
        self.x = self.y = self.z = self.limit = 0.0

    def place(self, lat: float, lon: float, radius_m: float,
              kinds: Iterable[str] | None, local: bool = False) -> None:
        self.lat, self.lon, self.radius_m = lat, lon, radius_m
        self.kinds = frozenset(kinds) if kinds else None
        self.local = local
        self.kind_bits = subscriber_bits(self.kinds, local)
        self.x, self.y, self.z = unit_vector(lat, lon)
        # Squared chord of the radius's angle (capped at the antipode: chord 2).
        half = min(math.pi / 2, radius_m / EARTH_RADIUS_M / 2)
        self.limit = 4.0 * math.sin(half) ** 2

    def wants(self, kind: str, lat: float, lon: float, local: bool = False) -> bool:
        if not self.kind_bits & kind_bit(kind, local):
            return False
        px, py, pz = unit_vector(lat, lon)
        dx, dy, dz = self.x - px, self.y - py, self.z - pz
        return dx * dx + dy * dy + dz * dz <= self.limit


class _Cell(Generic[T]):
    """The subscribers registered in one cell: a list, and their geometry column by column.

    Rows of `geo`: x, y, z, limit. Removal moves the last member into the freed slot,
    so the first `n` columns are always the members, in `subs` order (and `targets`,
    their targets, for the gateway's hot path)."""

    __slots__ = ("geo", "kind_bits", "slot", "subs", "targets")

    def __init__(self) -> None:
        self.subs: list[Subscriber[T]] = []
        self.targets: list[T] = []
        self.slot: dict[Subscriber[T], int] = {}
        self.geo = np.empty((4, _MIN_CAPACITY))
        self.kind_bits = np.empty(_MIN_CAPACITY, dtype=np.uint8)

    def add(self, sub: Subscriber[T]) -> None:
        i = len(self.subs)
        if i == self.geo.shape[1]:
            self._resize(2 * i)
        self.geo[:, i] = (sub.x, sub.y, sub.z, sub.limit)
        self.kind_bits[i] = sub.kind_bits
        self.slot[sub] = i
        self.subs.append(sub)
        self.targets.append(sub.target)

    def remove(self, sub: Subscriber[T]) -> None:
        i = self.slot.pop(sub, None)
        if i is None:
            return
        last = self.subs.pop()
        last_target = self.targets.pop()
        if last is not sub:
            self.subs[i] = last
            self.targets[i] = last_target
            self.slot[last] = i
            n = len(self.subs)
            self.geo[:, i] = self.geo[:, n]
            self.kind_bits[i] = self.kind_bits[n]
        capacity = self.geo.shape[1]
        if capacity > _MIN_CAPACITY and len(self.subs) <= capacity // 4:
            self._resize(capacity // 2)

    def hits(self, bit: int, px: float, py: float, pz: float) -> list[int]:
        """Slots of the members that want a post of kind `bit` at unit vector (px, py, pz)."""
        n = len(self.subs)
        d = self.geo[:3, :n] - np.array(((px,), (py,), (pz,)))
        d *= d
        chord2 = d[0] + d[1]
        chord2 += d[2]
        hit = chord2 <= self.geo[3, :n]
        hit &= (self.kind_bits[:n] & bit).astype(bool)
        return np.flatnonzero(hit).tolist()

    def _resize(self, capacity: int) -> None:
        n = len(self.subs)
        geo = np.empty((4, capacity))
        geo[:, :n] = self.geo[:, :n]
        kind_bits = np.empty(capacity, dtype=np.uint8)
        kind_bits[:n] = self.kind_bits[:n]
        self.geo, self.kind_bits = geo, kind_bits

    def __len__(self) -> int:
        return len(self.subs)


class SubscriberIndex(Generic[T]):
    def __init__(self, grid: CellGrid, *, use_cells: bool = True) -> None:
        self.grid = grid
        # With use_cells off every post is checked against every subscriber, one by one
        # in Python: the benchmark's "naive" scenario, to show what the index buys.
        self.use_cells = use_cells
        self._cells: dict[int, _Cell[T]] = {}
        self._all: set[Subscriber[T]] = set()

    def __len__(self) -> int:
        return len(self._all)

    def add(self, sub: Subscriber[T]) -> None:
        self._all.add(sub)
        if self.use_cells:
            sub.cells = self.grid.cells_covering(sub.lat, sub.lon, sub.radius_m)
            for cell in sub.cells:
                members = self._cells.get(cell)
                if members is None:
                    members = self._cells[cell] = _Cell()
                members.add(sub)

    def remove(self, sub: Subscriber[T]) -> None:
        self._all.discard(sub)
        for cell in sub.cells:
            members = self._cells.get(cell)
            if members is not None:
                members.remove(sub)
                if not members:
                    del self._cells[cell]
        sub.cells = []

    def move(self, sub: Subscriber[T], lat: float, lon: float, radius_m: float,
             kinds: Iterable[str] | None, local: bool = False) -> None:
        self.remove(sub)
        sub.place(lat, lon, radius_m, kinds, local)
        self.add(sub)

    def matching(self, kind: str, lat: float, lon: float,
                 local: bool = False) -> list[Subscriber[T]]:
        """Subscribers that want a post of `kind` at (lat, lon), local or not:
        `Subscriber.wants`, with the post's unit vector computed once instead of once per
        candidate."""
        bit = kind_bit(kind, local)
        px, py, pz = unit_vector(lat, lon)
        if self.use_cells:
            members = self._cells.get(self.grid.cell_of(lat, lon))
            if members is None:
                return []
            subs = members.subs
            return [subs[i] for i in members.hits(bit, px, py, pz)]
        out = []
        for sub in self._all:
            if sub.kind_bits & bit:
                dx, dy, dz = sub.x - px, sub.y - py, sub.z - pz
                if dx * dx + dy * dy + dz * dz <= sub.limit:
                    out.append(sub)
        return out

    def recipients(self, kind: str, lat: float, lon: float, local: bool = False) -> list[T]:
        """The targets of `matching`, straight from the cell's list (the gateway's hot path)."""
        if not self.use_cells:
            return [sub.target for sub in self.matching(kind, lat, lon, local)]
        members = self._cells.get(self.grid.cell_of(lat, lon))
        if members is None:
            return []
        targets = members.targets
        return [targets[i] for i in members.hits(kind_bit(kind, local),
                                                 *unit_vector(lat, lon))]

    def candidates(self, lat: float, lon: float) -> int:
        """How many subscribers a post at (lat, lon) is checked against."""
        if not self.use_cells:
            return len(self._all)
        members = self._cells.get(self.grid.cell_of(lat, lon))
        return len(members) if members is not None else 0

    def all(self) -> Iterable[Subscriber[T]]:
        return self._all
