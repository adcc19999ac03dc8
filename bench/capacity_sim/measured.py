"""The benchmark's measured figures the capacity model starts from (bench/results/latest.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.capacity_sim.inputs import RESULTS, ROOT


@dataclass(frozen=True)
class Measured:
    """What bench/results/latest.json says about Streetfeed at N sockets (streetfeed scenario)."""

    path: str
    command: str
    started: str
    n: int
    cpu_s_per_100k: float
    cpu_s_per_100k_all: float
    rss_kib_per_socket: float
    deliveries_per_s: float
    p99_ms: float
    rss_kib_base: float
    valkey_ms_per_post: float
    enricher_ms_per_post: float
    deliveries_per_post: float
    runs: int
    write_cpu_s_per_100k: float     # ceiling scenario: one pre-encoded frame per transport

    @property
    def write_s(self) -> float:
        """CPU-seconds to write one pre-encoded frame to one socket (the ceiling scenario)."""
        return self.write_cpu_s_per_100k / 100_000.0

    @property
    def delivery_s(self) -> float:
        """Gateway CPU-seconds per delivery."""
        return self.cpu_s_per_100k / 100_000.0


def load_measured(path: Path = RESULTS, n: int = 10_000) -> Measured:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"capacity: cannot read {path}: {exc} (run `python -m bench` first)"
                         ) from None
    try:
        sf = data["by_n"][str(n)]["scenarios"]["streetfeed"]
        ceiling = data["by_n"][str(n)]["scenarios"]["ceiling"]
        runs = [r for r in data["runs"] if r["scenario"] == "streetfeed" and r["n"] == n
                and r.get("saturation_posts")]
    except KeyError as exc:
        raise SystemExit(f"capacity: {path} has no streetfeed figures at N = {n} ({exc})"
                         ) from None
    if not runs:
        raise SystemExit(f"capacity: {path} has no streetfeed runs at N = {n}")

    def med(values: list[float]) -> float:
        return float(np.median(values))

    return Measured(
        path=str(path.relative_to(ROOT)), command=data["meta"].get("command", "?"),
        started=data["meta"].get("started", "?"), n=n,
        cpu_s_per_100k=sf["cpu_s_per_100k"]["median"],
        cpu_s_per_100k_all=sf["cpu_s_per_100k_all"]["median"],
        rss_kib_per_socket=sf["rss_kib_per_socket"]["median"],
        deliveries_per_s=sf["deliveries_per_s"]["median"],
        p99_ms=sf["p99_ms"]["median"],
        rss_kib_base=med([r["rss_kib_before"] for r in runs]),
        valkey_ms_per_post=med([1000 * r["cpu_s_saturation"]["valkey"] / r["saturation_posts"]
                                for r in runs]),
        enricher_ms_per_post=med([1000 * r["cpu_s_saturation"]["streetfeed-enricher"]
                                  / r["saturation_posts"] for r in runs]),
        deliveries_per_post=med([r["saturation_deliveries"] / r["saturation_posts"]
                                 for r in runs]),
        runs=len(runs),
        write_cpu_s_per_100k=ceiling["cpu_s_per_100k"]["median"],
    )
