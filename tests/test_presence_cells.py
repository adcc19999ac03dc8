"""People watching counted over the cells around the shop only (issue 19, point 4): the same
counts as the walk over every cell of every gateway's report that it replaces."""

from __future__ import annotations

import asyncio
import math

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from feed.presence import PresenceBoard
from rules.geo import CellGrid, cells_within, haversine_m
from runtime.settings import load_settings
from schemas.limits import AUDIENCE_RADII_M, PRESENCE_CELL_DEG
from schemas.presence import PresenceReport
from storage import keys

GRID = CellGrid(PRESENCE_CELL_DEG)
_encode = msgspec.json.Encoder().encode

# Shops anywhere people live, the poles' caps and the antimeridian included.
latitudes = st.floats(min_value=-85.0, max_value=85.0)
longitudes = st.floats(min_value=-180.0, max_value=180.0)


def walk_every_cell(reports: dict[str, list[tuple[int, int]]], lat: float, lon: float,
                    radii: tuple[int, ...]) -> dict[int, int]:
    """PresenceBoard.counts before issue 19: every cell of every report, a distance each."""
    counts = dict.fromkeys(radii, 0)
    for cells in reports.values():
        for cell, n in cells:
            distance = haversine_m(lat, lon, *GRID.centre_of(cell))
            for radius in radii:
                if distance <= radius:
                    counts[radius] += n
    return counts


@given(latitudes, longitudes)
@settings(max_examples=200, deadline=None)
def test_cells_within_are_exactly_the_cells_whose_centre_is_within_each_radius(
        lat: float, lon: float) -> None:
    rings = cells_within(GRID, lat, lon, AUDIENCE_RADII_M)
    # Every cell that could be near, well past the largest radius, classified one by one.
    wider = GRID.cells_covering(lat, lon, AUDIENCE_RADII_M[-1] * 1.5 + 1_000)
    for cell in wider:
        distance = haversine_m(lat, lon, *GRID.centre_of(cell))
        expected = next((i for i, r in enumerate(AUDIENCE_RADII_M) if distance <= r), None)
        found = [i for i, ring in enumerate(rings) if cell in ring]
        assert found == ([] if expected is None else [expected]), (cell, distance)
    assert sum(map(len, rings)) == len({c for ring in rings for c in ring})


def test_cells_within_the_largest_radius_are_few() -> None:
    """What a count looks at in Bordeaux: ~160 cells, not a city's thousands."""
    rings = cells_within(GRID, 44.8378, -0.5792, AUDIENCE_RADII_M)
    assert 100 < sum(map(len, rings)) < 250
    assert cells_within(GRID, 44.8, -0.5, ()) == []


# A gateway's report: cells near the shop (within ~3 km, so some fall past every radius),
# or none at all (it has nobody left there).
def _report(lat: float, lon: float) -> st.SearchStrategy[list[tuple[int, int]]]:
    near = st.tuples(st.floats(-0.03, 0.03), st.floats(-0.04, 0.04)).map(
        lambda d: GRID.cell_of(max(-89.9, min(89.9, lat + d[0])), lon + d[1]))
    return st.lists(st.tuples(near, st.integers(1, 40)), max_size=30,
                    unique_by=lambda c: c[0])


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[float, float, list[tuple[str, list[tuple[int, int]]]]]:
    lat = draw(st.floats(min_value=-80.0, max_value=80.0))
    lon = draw(longitudes)
    steps = draw(st.lists(st.tuples(st.sampled_from(["g1", "g2", "g3", "silent"]),
                                    _report(lat, lon)), min_size=1, max_size=12))
    return lat, lon, steps


@given(_scenario())
@settings(max_examples=150, deadline=None)
def test_counts_are_those_of_a_walk_over_every_cell(
        scenario: tuple[float, float, list[tuple[str, list[tuple[int, int]]]]]) -> None:
    """Reports replacing each other, gateways emptying and gateways dropped as silent: after
    every step, the board counts what the walk over every report counts."""
    lat, lon, steps = scenario
    asyncio.run(_replay(lat, lon, steps))


async def _replay(lat: float, lon: float,
                  steps: list[tuple[str, list[tuple[int, int]]]]) -> None:
    config = load_settings({}, redis_url="redis://127.0.0.1:1/0")
    # The board is fed its messages here, as its listening loop would; never connects.
    board = PresenceBoard(Redis.from_url(config.redis_url), config)
    channel = keys.presence_channel("main")
    channels = {channel: "main"}
    board._take({"type": "subscribe", "channel": channel.encode(), "data": 1}, channels)
    board._since["main"] -= config.presence_interval_s + 1  # a whole round heard
    model: dict[str, list[tuple[int, int]]] = {}
    for gateway, cells in steps:
        if gateway == "silent":
            loop = asyncio.get_running_loop()
            board._drop_silent("main", loop.time() + config.presence_silence_s + 1)
            model.clear()
        else:
            report = PresenceReport(gateway=gateway, cells=cells)
            board._take({"type": "message", "channel": channel.encode(),
                         "data": _encode(report)}, channels)
            if cells:
                model[gateway] = cells
            else:
                model.pop(gateway, None)
        for radii in (AUDIENCE_RADII_M, (2000, 250), (500,)):
            assert board.counts("main", lat, lon, radii) == walk_every_cell(
                model, lat, lon, radii)
    sums = board._sums_of("main")
    assert all(n > 0 for n in sums.values())
    assert math.isclose(sum(sums.values()), sum(n for cells in model.values() for _c, n in cells))
