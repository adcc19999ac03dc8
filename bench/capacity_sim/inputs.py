"""What the capacity model reads besides its assumptions: paths, the product's settings and
constants, the browser code's timings, and the PROBE figures as numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path

from bench.capacity import GIB, PROBE
from feed.console import _REACH_ROUNDS
from rules.geo import EARTH_RADIUS_M
from runtime.settings import Settings

__all__ = [
    "BEGIN", "CONSOLE_REACH_ROUNDS", "CONSOLE_UPDATE_S", "DOC",
    "END", "GIB", "KIB", "MOVE_THRESHOLD_M", "M_PER_DEG_LAT", "PHONE_DEFAULT_RADIUS_M", "PLOT",
    "PRESENCE_FLUSH_S", "RESULTS", "ROOT", "SCREEN_RADIUS_M", "SETTINGS", "SOCKETS_PER_PROCESS",
    "SWEEP_EXPIRIES_PER_S", "SWEEP_EXPIRY_S",
    "probe_figures",
]

ROOT: Path = Path(__file__).resolve().parents[2]
RESULTS: Path = ROOT / "bench" / "results" / "latest.json"
DOC: Path = ROOT / "docs" / "capacity.md"
PLOT: Path = ROOT / "docs" / "capacity.png"
BEGIN = "<!-- capacity:generated:begin (python -m bench.capacity rewrites this part) -->"
END = "<!-- capacity:generated:end -->"

SETTINGS = Settings()
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0
KIB = 1024.0


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
# feed/console.py: a console's socket is told when its counts change, computed at most once
# a presence interval per shop (folded), and its reach is read this many times after each
# of its shop's posts. The console page does not poll (since d0e4748).
CONSOLE_UPDATE_S = SETTINGS.presence_interval_s
CONSOLE_REACH_ROUNDS = _REACH_ROUNDS
# feed/stats.py: StatsPublisher(interval_s=1.0), one flush per process per second.
PRESENCE_FLUSH_S = 1.0
# The scheduler's CPU per post its every-second sweep expires (workers/scheduler.py
# sweep_expired: LiveIndex.expire_many, 500 remove scripts a pipeline; no arq job per post
# since issue 19), and the posts one scheduler expires per second that way: `python -m
# bench.sweepcost --posts 5000` (2026-12-01, quiet machine): 115 us of the scheduler's CPU
# and 54 us of Valkey's a post, 6,190 posts/s (one by one: 538 us, 188 us, 1,486/s).
SWEEP_EXPIRY_S = 0.000115
SWEEP_EXPIRIES_PER_S = 6_000.0
# BENCH-NOTES: open files are capped at 20,000 per process -> 10,000 sockets per process.
SOCKETS_PER_PROCESS = 10_000


def probe_figures() -> dict[str, float]:
    """PROBE without its text entries (the date and conditions of the measurement)."""
    return {k: float(v) for k, v in PROBE.items() if not isinstance(v, str)}
