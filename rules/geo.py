"""Great-circle distance and the geo cells that index subscribers.

Cells are latitude bands of `cell_deg` degrees, each cut into as many longitude
cells as keep them about as wide as they are tall (fewer towards the poles,
at least one). A point falls in exactly one cell; a subscriber's disc is
registered in every cell that its bounding box touches, so a post only has to
look at the subscribers of its own cell, then check the exact distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EARTH_RADIUS_M", "CellGrid", "cells_within", "haversine_m"]

EARTH_RADIUS_M = 6_371_008.8
# Bounding boxes are widened by this much (degrees) so that floating-point
# rounding can never drop a subscriber whose exact distance is within radius.
_MARGIN_DEG = 1e-7


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def walking_minutes(distance_m: float, speed_m_s: float = 1.3) -> int:
    return max(1, round(distance_m / speed_m_s / 60))


@dataclass(frozen=True, slots=True)
class CellGrid:
    cell_deg: float

    @property
    def bands(self) -> int:
        return math.ceil(180.0 / self.cell_deg)

    def band_of(self, lat: float) -> int:
        return min(self.bands - 1, max(0, int((lat + 90.0) // self.cell_deg)))

    def cells_in_band(self, band: int) -> int:
        # Use the band edge nearest the pole so cells are never narrower than tall.
        south = -90.0 + band * self.cell_deg
        north = min(90.0, south + self.cell_deg)
        widest_lat = max(abs(south), abs(north))
        circumference_deg = 360.0 * math.cos(math.radians(widest_lat))
        return max(1, int(circumference_deg // self.cell_deg))

    def cell_of(self, lat: float, lon: float) -> int:
        band = self.band_of(lat)
        n = self.cells_in_band(band)
        col = int(((lon + 180.0) % 360.0) / 360.0 * n) % n
        return self._key(band, col)

    def cells_covering(self, lat: float, lon: float, radius_m: float) -> list[int]:
        """Every cell that may hold a point within `radius_m` of (lat, lon)."""
        delta = radius_m / EARTH_RADIUS_M  # angular radius, radians
        delta_deg = math.degrees(delta) + _MARGIN_DEG
        south = lat - delta_deg
        north = lat + delta_deg
        # A cap reaching a pole covers every longitude near it.
        whole_circle = north >= 90.0 or south <= -90.0
        if not whole_circle:
            # Largest longitude offset of any point on the cap (spherical geometry).
            ratio = math.sin(delta) / math.cos(math.radians(lat))
            whole_circle = ratio >= 1.0
            dlon_deg = 0.0 if whole_circle else math.degrees(math.asin(ratio)) + _MARGIN_DEG
        cells: list[int] = []
        for band in range(self.band_of(south), self.band_of(north) + 1):
            n = self.cells_in_band(band)
            if whole_circle or 2 * dlon_deg >= 360.0:
                cols: range | list[int] = range(n)
            else:
                west = ((lon - dlon_deg + 180.0) % 360.0) / 360.0 * n
                span = 2 * dlon_deg / 360.0 * n
                first = math.floor(west)
                last = math.floor(west + span)
                wraps_all = last - first + 1 >= n
                cols = range(n) if wraps_all else [c % n for c in range(first, last + 1)]
            cells.extend(self._key(band, col) for col in cols)
        return cells

    def centre_of(self, cell: int) -> tuple[float, float]:
        band, col = cell >> 24, cell & 0xFFFFFF
        lat = -90.0 + (band + 0.5) * self.cell_deg
        lon = -180.0 + (col + 0.5) * 360.0 / self.cells_in_band(band)
        return min(90.0, lat), lon

    def _key(self, band: int, col: int) -> int:
        # Bands hold fewer than 2**24 cells for any allowed cell size.
        return (band << 24) | col


def cells_within(grid: CellGrid, lat: float, lon: float,
                 radii: tuple[int, ...]) -> list[list[int]]:
    """The cells of `grid` whose centre is within each radius of (lat, lon), nested: list i
    holds those within radii[i] and not within any smaller one (radii ascending). A count of
    what lies in each cell, summed per radius (a shop's people watching), then looks at these
    few cells only, whatever the number of cells counted, with the same distance as a walk
    over every cell (the centre's haversine) would."""
    rings: list[list[int]] = [[] for _ in radii]
    if not radii:
        return rings
    # A centre within the largest radius is a point of its cell within it: its cell is
    # among those covering the disc.
    for cell in grid.cells_covering(lat, lon, radii[-1]):
        distance = haversine_m(lat, lon, *grid.centre_of(cell))
        for i, radius in enumerate(radii):
            if distance <= radius:
                rings[i].append(cell)
                break
    return rings
