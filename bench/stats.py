"""Small statistics helpers: percentiles, and median with range over repetitions."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN when empty."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """{"median", "min", "max", "n"} over repetitions (NaN-free values only)."""
    clean = sorted(v for v in values if v is not None and not math.isnan(v))
    if not clean:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"median": percentile(clean, 50), "min": clean[0], "max": clean[-1], "n": len(clean)}


def window_rate(times_ms: list[float], lo: float = 0.1, hi: float = 0.9) -> float:
    """Events per second between the lo and hi quantiles of sorted event times (steady state)."""
    if len(times_ms) < 10:
        return math.nan
    times = sorted(times_ms)
    a = int(len(times) * lo)
    b = int(len(times) * hi) - 1
    span = (times[b] - times[a]) / 1000.0
    return (b - a) / span if span > 0 else math.nan


def window_rate_hist(counts: list[int], lo: float = 0.1, hi: float = 0.9) -> float:
    """`window_rate` from a per-millisecond histogram of event times."""
    total = sum(counts)
    if total < 10:
        return math.nan
    a_rank, b_rank = int(total * lo), int(total * hi) - 1
    seen = 0
    a_ms = b_ms = None
    for ms, c in enumerate(counts):
        seen += c
        if a_ms is None and seen > a_rank:
            a_ms = ms
        if seen > b_rank:
            b_ms = ms
            break
    assert a_ms is not None and b_ms is not None
    span = (b_ms - a_ms) / 1000.0
    return (b_rank - a_rank) / span if span > 0 else math.nan
