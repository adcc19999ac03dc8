"""The benchmark's summary and targets (bench/report.py) and the tuned peer's rooms
(bench/peer_cells.py): pure computations over results and the benchmark's city."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report
from bench.city import KINDS, Audience, make_shops, make_subscribers
from bench.peer_cells import cell_cost
from rules.geo import CellGrid


def _run(scenario: str, rep: int, dps: float, cpu: float, cpu_all: float | None,
         *, old_key: bool = False) -> dict[str, Any]:
    run: dict[str, Any] = {"scenario": scenario, "n": 10_000, "rep": rep,
                           "deliveries_per_s": dps, "cpu_s_per_100k": cpu, "p50_ms": 5.0,
                           "p95_ms": 10.0, "p99_ms": 20.0, "rss_kib_per_socket": 10.0,
                           "missing": 0, "extra": 0, "duplicates": 0}
    if cpu_all is not None:
        run["cpu_s_per_100k_all_server" if old_key else "cpu_s_per_100k_all"] = cpu_all
    return run


def _results() -> dict[str, Any]:
    # Repetition 0 written before issue 19 (the old key), repetition 1 after.
    runs = [_run("ceiling", 0, 100_000, 0.8, 0.8, old_key=True),
            _run("streetfeed", 0, 70_000, 1.1, 1.44, old_key=True),
            _run("peer", 0, 2_500, 40.0, 40.1, old_key=True),
            _run("ceiling", 1, 100_000, 1.0, 1.0),
            _run("streetfeed", 1, 60_000, 1.2, 1.6),
            _run("peer", 1, 2_000, 42.0, 42.2),
            _run("peer_tuned", 1, 5_000, 20.0, 20.0)]
    results: dict[str, Any] = {"meta": {}, "runs": runs}
    results.update(report.summarise(results))
    return results


def test_cpu_of_all_server_processes_is_summarised_like_the_other_metrics() -> None:
    results = _results()
    streetfeed = results["by_n"]["10000"]["scenarios"]["streetfeed"]
    assert streetfeed["cpu_s_per_100k_all"] == {"median": pytest.approx(1.52), "min": 1.44,
                                                "max": 1.6, "n": 2}
    assert results["scenarios"]["streetfeed"]["cpu_s_per_100k_all"] == pytest.approx(1.52)
    assert results["scenarios"]["peer_tuned"]["cpu_s_per_100k_all"] == 20.0
    ratios = results["by_n"]["10000"]["ratios"]
    # Per repetition, then the median: 1.44/0.8 and 1.6/1.0; the web process alone 1.1/0.8
    # and 1.2/1.0.
    assert ratios["cpu all streetfeed/ceiling"]["median"] == pytest.approx((1.8 + 1.6) / 2)
    assert ratios["cpu streetfeed/ceiling"]["median"] == pytest.approx((1.375 + 1.2) / 2)
    assert results["ratios"]["streetfeed/peer_tuned"] == pytest.approx(12.0)


def test_the_cpu_target_is_on_all_server_processes_the_web_process_is_information() -> None:
    results = _results()
    targets = {t["target"]: t for t in results["targets"]}
    cpu_all = targets["streetfeed/ceiling CPU-s per 100k (all server processes)"]
    assert cpu_all["value"] == pytest.approx(1.7)
    assert cpu_all["bound"] == "<= 1.5"
    assert cpu_all["met"] is False
    web = targets["streetfeed/ceiling CPU-s per 100k (web process alone)"]
    assert web["value"] == pytest.approx(1.2875)
    assert web["met"] is None and web["information"]
    tuned = targets["streetfeed/peer_tuned deliveries/s"]
    assert (tuned["value"], tuned["bound"], tuned["met"]) == (12.0, ">= 10", True)

    text = report.render_tables(results)
    assert ("| streetfeed/ceiling CPU-s per 100k (all server processes, N = 10,000) | 1.70 "
            "| <= 1.5 | **no** |") in text
    assert ("| streetfeed/ceiling CPU-s per 100k (web process alone, N = 10,000) | 1.29 "
            "| information, not a target | information |") in text
    assert "| streetfeed/peer_tuned deliveries/s (N = 10,000) | 12.00 | >= 10 | yes |" in text
    assert ("CPU streetfeed/ceiling, all server processes **1.70 [1.60–1.80]** (web process "
            "alone 1.29 [1.20–1.38])") in text


@pytest.fixture(scope="module")
def city() -> Audience:
    return Audience.compute(make_subscribers(2_000, 1), make_shops(seed=1))


@pytest.mark.parametrize("cell_deg", [0.002, 0.005])
def test_every_recipient_is_in_the_room_its_post_is_emitted_to(city: Audience,
                                                               cell_deg: float) -> None:
    """peer_tuned emits to the room of (the shop's cell, the kind): every subscriber who
    should get the post joined it, so the clients' own distance check only drops."""
    grid = CellGrid(cell_deg)
    rooms: dict[tuple[int, str], set[int]] = {}
    for s in city.subscribers:
        for cell in grid.cells_covering(s.lat, s.lon, s.radius_m):
            for kind in s.kinds or KINDS:
                rooms.setdefault((cell, kind), set()).add(s.idx)
    for shop in city.shops:
        cell = grid.cell_of(shop.lat, shop.lon)
        for kind in KINDS:
            wanted = set(city.by_shop_kind[(shop.idx, kind)].tolist())
            assert wanted <= rooms.get((cell, kind), set())


def test_smaller_cells_and_kinds_write_fewer_wasted_frames_for_more_rooms(city: Audience) -> None:
    small, large = cell_cost(0.002, city), cell_cost(0.005, city)
    for cost in (small, large):
        assert 1.0 <= cost.frames_per_delivery_cell_kind < cost.frames_per_delivery_cell
        assert cost.rooms_per_client_cell < cost.rooms_per_client_cell_kind
    assert small.frames_per_delivery_cell_kind < large.frames_per_delivery_cell_kind
    assert small.rooms_per_client_cell_kind > large.rooms_per_client_cell_kind
