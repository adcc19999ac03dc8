"""The cell index must never lose a subscriber that the exact check would accept."""

from __future__ import annotations

import math

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from feed.frames import matched_as_local
from feed.index import Subscriber, SubscriberIndex
from rules.geo import EARTH_RADIUS_M, CellGrid, haversine_m
from rules.producers import any_local, distance_km
from schemas.feed import FeedEntry

KINDS = ["new_arrival", "flash_offer", "opening_change"]

lats = st.one_of(
    st.floats(-90, 90),
    st.floats(89.9, 90),  # near the north pole
    st.floats(-90, -89.9),  # near the south pole
    st.floats(45, 46),
)
lons = st.one_of(
    st.floats(-180, 180),
    st.floats(179.95, 180),  # antimeridian
    st.floats(-180, -179.95),
)
cell_sizes = st.sampled_from([0.005, 0.01, 0.05, 1.0])


def _offset(lat: float, lon: float, dist_m: float, bearing: float) -> tuple[float, float]:
    """The point `dist_m` from (lat, lon) along `bearing` (radians): shops near a subscriber."""
    d = dist_m / EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 180.0) % 360.0 - 180.0
    return max(-90.0, min(90.0, math.degrees(p2))), lon2


@st.composite
def scenes(draw: st.DrawFn) -> tuple[float, list[tuple[float, float, float, frozenset[str] | None]],
                                       list[tuple[float, float, str]]]:
    cell = draw(cell_sizes)
    subs = []
    for _ in range(draw(st.integers(1, 12))):
        kinds = draw(st.one_of(st.none(), st.frozensets(st.sampled_from(KINDS), min_size=1)))
        subs.append((draw(lats), draw(lons), draw(st.floats(1, 5000)), kinds))
    shops = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            # Near a subscriber, often right at its radius (cell and disc edges).
            lat, lon, radius, _ = draw(st.sampled_from(subs))
            dist = draw(st.one_of(st.floats(0, radius * 1.2),
                                  st.floats(radius * 0.999, radius * 1.001)))
            lat, lon = _offset(lat, lon, dist, draw(st.floats(0, 2 * math.pi)))
        else:
            lat, lon = draw(lats), draw(lons)
        shops.append((lat, lon, draw(st.sampled_from(KINDS))))
    return cell, subs, shops


@settings(max_examples=400, deadline=None)
@given(scenes())
@example((0.005, [(89.999, 10.0, 5000.0, None)], [(89.999, -170.0, "new_arrival")]))
@example((0.005, [(48.0, 179.999, 1000.0, None)], [(48.0, -179.999, "flash_offer")]))
@example((0.005, [(0.0025, 0.0, 300.0, None)], [(0.0049999, 0.0, "new_arrival")]))
def test_index_agrees_with_brute_force(scene) -> None:  # type: ignore[no-untyped-def]
    cell, subs, shops = scene
    index: SubscriberIndex[int] = SubscriberIndex(CellGrid(cell))
    everyone = []
    for i, (lat, lon, radius, kinds) in enumerate(subs):
        sub: Subscriber[int] = Subscriber(i)
        sub.place(lat, lon, radius, kinds)
        index.add(sub)
        everyone.append(sub)
    for lat, lon, kind in shops:
        got = {s.target for s in index.matching(kind, lat, lon)}
        expected = {s.target for s in everyone if s.wants(kind, lat, lon)}
        assert got == expected


@settings(max_examples=300, deadline=None)
@given(lats, lons, st.floats(1, 5000), lats, lons)
def test_exact_check_is_haversine_distance(lat: float, lon: float, radius: float,
                                           plat: float, plon: float) -> None:
    distance = haversine_m(lat, lon, plat, plon)
    assume(abs(distance - radius) > 1e-3)  # float rounding right at the edge is not a fact
    sub: Subscriber[None] = Subscriber(None)
    sub.place(lat, lon, radius, None)
    assert sub.wants("new_arrival", plat, plon) == (distance <= radius)


def test_moving_changes_what_matches() -> None:
    index: SubscriberIndex[str] = SubscriberIndex(CellGrid(0.005))
    sub: Subscriber[str] = Subscriber("phone")
    sub.place(48.8566, 2.3522, 300, None)
    index.add(sub)
    assert [s.target for s in index.matching("new_arrival", 48.8570, 2.3525)] == ["phone"]
    index.move(sub, 43.2965, 5.3698, 300, ["flash_offer"])
    assert list(index.matching("new_arrival", 48.8570, 2.3525)) == []
    assert list(index.matching("new_arrival", 43.2966, 5.3699)) == []
    assert [s.target for s in index.matching("flash_offer", 43.2966, 5.3699)] == ["phone"]
    index.remove(sub)
    assert len(index) == 0 and index._cells == {}


def test_street_scale_subscriber_touches_few_cells() -> None:
    grid = CellGrid(0.005)
    assert len(grid.cells_covering(48.8566, 2.3522, 500)) <= 12
    # Even a 5 km disc at the pole stays bounded.
    assert len(grid.cells_covering(89.99, 0.0, 5000)) < 2000


def test_naive_index_matches_the_same() -> None:
    cells: SubscriberIndex[int] = SubscriberIndex(CellGrid(0.005))
    naive: SubscriberIndex[int] = SubscriberIndex(CellGrid(0.005), use_cells=False)
    for i in range(50):
        for idx in (cells, naive):
            sub: Subscriber[int] = Subscriber(i)
            sub.place(48.85 + i * 0.001, 2.35, 150 + 10 * i, None)
            idx.add(sub)
    for j in range(50):
        point = (48.85 + j * 0.0013, 2.3505)
        assert ({s.target for s in cells.matching("new_arrival", *point)}
                == {s.target for s in naive.matching("new_arrival", *point)})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 39)), min_size=1, max_size=200),
       st.lists(st.tuples(st.floats(48.84, 48.87), st.floats(2.33, 2.37),
                          st.sampled_from(KINDS)), min_size=1, max_size=10))
def test_cells_stay_right_through_joins_and_leaves(ops: list[tuple[bool, int]],
                                                   posts: list[tuple[float, float, str]]) -> None:
    """Leaving moves another member into the freed slot and cells grow and shrink: after
    any sequence of joins and leaves, each cell still holds exactly its members."""
    index: SubscriberIndex[int] = SubscriberIndex(CellGrid(0.005))
    pool = []
    for i in range(40):
        sub: Subscriber[int] = Subscriber(i)
        sub.place(48.85 + (i % 7) * 0.002, 2.35 + (i // 7) * 0.002, 200 + 25 * i,
                  [KINDS[i % 3]] if i % 4 == 0 else None)
        pool.append(sub)
    present: set[int] = set()
    for join, i in ops:
        if join and i not in present:
            index.add(pool[i])
            present.add(i)
        elif not join and i in present:
            index.remove(pool[i])
            present.discard(i)
    for lat, lon, kind in posts:
        expected = {i for i in present if pool[i].wants(kind, lat, lon)}
        assert {s.target for s in index.matching(kind, lat, lon)} == expected
        assert sorted(index.recipients(kind, lat, lon)) == sorted(expected)


# --- The `local` filter (issue 16): matched in the index like the kind filter -------------

LOCAL_KM = 100.0


@st.composite
def local_scenes(draw: st.DrawFn) -> tuple[
        list[tuple[float, float, float, frozenset[str] | None, bool]],
        list[tuple[float, float, str, list[tuple[float, float]]]]]:
    """Subscribers around Bordeaux with kinds and `local`; posts near them, each naming 0-3
    producers often right around LOCAL_KM from its shop."""
    subs = []
    for _ in range(draw(st.integers(1, 12))):
        kinds = draw(st.one_of(st.none(), st.frozensets(st.sampled_from(KINDS), min_size=1)))
        subs.append((draw(st.floats(44.80, 44.88)), draw(st.floats(-0.62, -0.52)),
                     draw(st.floats(50, 5000)), kinds, draw(st.booleans())))
    posts = []
    for _ in range(draw(st.integers(1, 12))):
        lat, lon = draw(st.floats(44.80, 44.88)), draw(st.floats(-0.62, -0.52))
        producers = [_offset(lat, lon, draw(st.one_of(st.floats(0, 300_000),
                                                      st.floats(99_900, 100_100))),
                             draw(st.floats(0, 2 * math.pi)))
                     for _ in range(draw(st.integers(0, 3)))]
        posts.append((lat, lon, draw(st.sampled_from(KINDS)), producers))
    return subs, posts


@settings(max_examples=300, deadline=None)
@given(local_scenes())
def test_local_filter_in_the_index_agrees_with_brute_force(scene) -> None:  # type: ignore[no-untyped-def]
    """The index (cells, bit masks) against the definition, checked the long way for each
    subscriber: within its radius, of a kind it takes, and when it asked for `local`, a post
    naming a producer at most LOCAL_KM from the shop by the distance the post delivers. A
    post's `local` flag is decided once, as the enricher does (rules.producers)."""
    subs, posts = scene
    index: SubscriberIndex[int] = SubscriberIndex(CellGrid(0.005))
    naive: SubscriberIndex[int] = SubscriberIndex(CellGrid(0.005), use_cells=False)
    for i, (lat, lon, radius, kinds, local) in enumerate(subs):
        for each in (index, naive):
            sub: Subscriber[int] = Subscriber(i)
            sub.place(lat, lon, radius, kinds, local)
            each.add(sub)
    for lat, lon, kind, producers in posts:
        delivered = [math.floor(haversine_m(lat, lon, plat, plon) / 100 + 0.5) / 10
                     for plat, plon in producers]
        post_is_local = any(d <= LOCAL_KM for d in delivered)
        assert any_local((distance_km(lat, lon, *p) for p in producers), LOCAL_KM) \
            == post_is_local
        expected = set()
        for i, (slat, slon, radius, kinds, local) in enumerate(subs):
            distance = haversine_m(slat, slon, lat, lon)
            assume(abs(distance - radius) > 1e-6 * radius)  # rounding at the edge aside
            if (distance <= radius and (kinds is None or kind in kinds)
                    and (post_is_local or not local)):
                expected.add(i)
        assert set(index.recipients(kind, lat, lon, post_is_local)) == expected
        assert {s.target for s in naive.matching(kind, lat, lon, post_is_local)} == expected
        # A tombstone is matched as local: every subscriber of its kind and place gets it.
        tombstone = FeedEntry(type="withdrawn", id="p_x", kind=kind, lat=lat, lon=lon)
        assert matched_as_local(tombstone)
        everyone = {i for i, (slat, slon, radius, kinds, _local) in enumerate(subs)
                    if haversine_m(slat, slon, lat, lon) <= radius
                    and (kinds is None or kind in kinds)}
        assert set(index.recipients(kind, lat, lon, matched_as_local(tombstone))) == everyone


def test_moving_changes_the_local_filter() -> None:
    index: SubscriberIndex[str] = SubscriberIndex(CellGrid(0.005))
    sub: Subscriber[str] = Subscriber("phone")
    sub.place(44.8370, -0.5735, 300, None, True)
    index.add(sub)
    assert index.recipients("new_arrival", 44.8371, -0.5735, False) == []
    assert index.recipients("new_arrival", 44.8371, -0.5735, True) == ["phone"]
    index.move(sub, 44.8370, -0.5735, 300, ["flash_offer"], False)
    assert index.recipients("new_arrival", 44.8371, -0.5735, True) == []
    assert index.recipients("flash_offer", 44.8371, -0.5735, False) == ["phone"]
    assert index.recipients("flash_offer", 44.8371, -0.5735, True) == ["phone"]
