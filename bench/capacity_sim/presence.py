"""Presence cells: which cell a phone is in, how many a process publishes, how many a
console sees around its shop."""

from __future__ import annotations

import math

import numpy as np

from bench.capacity import Model
from bench.capacity_sim.town import Population, Town
from rules.geo import EARTH_RADIUS_M, CellGrid
from schemas.limits import PRESENCE_CELL_DEG


def presence_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The hub's presence cell of each point (CellGrid(PRESENCE_CELL_DEG).cell_of, vectorised)."""
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
