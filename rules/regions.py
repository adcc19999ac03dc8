"""Regions: a name and a bounding box each; one feed stream and geo index per region.

A shop belongs to the first region that contains it; a subscriber reads every
region its disc touches, so one near a border gets posts from both sides.
Pure functions, no I/O. Boxes do not cross the antimeridian (west <= east).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rules.geo import EARTH_RADIUS_M

__all__ = ["REGION_NAME", "Region", "parse_regions", "region_of", "regions_for"]

REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    south: float = -90.0
    west: float = -180.0
    north: float = 90.0
    east: float = 180.0

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def touches(self, lat: float, lon: float, radius_m: float) -> bool:
        """Whether the disc may hold a point of this region (bounding boxes, conservative)."""
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)
        if lat - dlat > self.north or lat + dlat < self.south:
            return False
        cos_lat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
        dlon = min(180.0, dlat / max(cos_lat, 1e-9))
        if dlon >= 180.0:
            return True
        west, east = lon - dlon, lon + dlon
        # The disc's longitudes may wrap around the antimeridian.
        spans = [(west, east)]
        if west < -180.0:
            spans = [(west + 360.0, 180.0), (-180.0, east)]
        elif east > 180.0:
            spans = [(west, 180.0), (-180.0, east - 360.0)]
        return any(w <= self.east and e >= self.west for w, e in spans)


def parse_regions(text: str) -> tuple[Region, ...]:
    """'bordeaux:44.7,-0.8,45.0,-0.4; paris:48.7,2.1,49.0,2.6' (name:south,west,north,east)."""
    regions = []
    for clause in filter(None, (c.strip() for c in text.split(";"))):
        name, _, box = clause.partition(":")
        name = name.strip()
        if not REGION_NAME.match(name):
            raise ValueError(f"region name {name!r}: expected lowercase letters, digits and '-'")
        try:
            south, west, north, east = (float(x) for x in box.split(","))
        except ValueError:
            raise ValueError(f"region {name!r}: expected name:south,west,north,east") from None
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ValueError(f"region {name!r}: box out of range or empty")
        regions.append(Region(name, south, west, north, east))
    if len({r.name for r in regions}) != len(regions):
        raise ValueError("region names must be unique")
    return tuple(regions)


def region_of(regions: tuple[Region, ...], lat: float, lon: float) -> str | None:
    return next((r.name for r in regions if r.contains(lat, lon)), None)


def regions_for(regions: tuple[Region, ...], lat: float, lon: float,
                radius_m: float) -> list[str]:
    return [r.name for r in regions if r.touches(lat, lon, radius_m)]
