"""Small response bodies of the service endpoints (health, readiness, client config)."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["ClientConfig", "Health", "Point", "Readiness"]


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, frozen=True):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str | int]
    # Why not ready, in words (empty when ready).
    reasons: list[str] = []


class Point(msgspec.Struct, frozen=True):
    lat: float
    lon: float


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True):
    tile_url: str
    tile_attribution: str
    fallback: Point
    radius_max_m: int
    # Photos (issue 15): the console refuses a fifth photo or an over-large file before
    # sending it, from the server's own limits.
    media_per_post_max: int
    media_upload_max_bytes: int
    # Above this many pixels the console shrinks a photo before sending it (a 50-200 MP
    # phone's); added after the two above, so older clients ignore it.
    media_pixels_max: int
