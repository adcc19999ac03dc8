"""runtime/collector.py: what the web process freezes, when, and what it gives back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runtime.collector import Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector(thaw_interval_s=0)
    yield collector
    collector.uninstall()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_start_up_is_frozen_and_full_collections_walk_only_what_came_after(
        collector: Collector) -> None:
    collector.install()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and collector.freezes == 1
    assert not collector.after_collections()  # none since the freeze
    survivors = [_Node() for _ in range(1000)]
    gc.collect()
    assert collector.collections[2] >= 1 and collector.max_pause_s[2] > 0
    assert collector.after_collections()  # the survivors are frozen now
    assert gc.get_freeze_count() >= frozen + len(survivors)
    assert not collector.after_collections()


def test_a_frozen_object_is_freed_by_its_count_and_a_thaw_frees_frozen_cycles(
        collector: Collector) -> None:
    collector.install()
    plain, a, b = _Node(), _Node(), _Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    gone = weakref.ref(a)
    gc.collect()
    collector.after_collections()
    frozen = gc.get_freeze_count()
    del plain
    assert gc.get_freeze_count() == frozen - 1
    del a, b
    gc.collect()
    assert gc.get_freeze_count() == frozen - 1  # frozen in a cycle: kept until a thaw
    assert gone() is not None
    collector.thaw()  # everything collected at once, the survivors frozen again
    assert gone() is None
    assert collector.thaws == 1 and gc.get_freeze_count() > 0


def test_young_collections_are_rare_and_their_survivors_frozen() -> None:
    """Serving frees what it allocates: with the raised young threshold, churn alone runs
    no collection; long-lived objects arriving do, and are frozen after it."""
    before = gc.get_threshold()
    collector = Collector(thaw_interval_s=0, thresholds=(20_000, 10, 10))
    try:
        collector.install()
        assert gc.get_threshold() == (20_000, 10, 10)
        runs = sum(s["collections"] for s in gc.get_stats())
        for _ in range(200_000):  # allocated and freed: a request's, a frame's objects
            node = _Node()
            node.other = _Node()
        assert sum(s["collections"] for s in gc.get_stats()) == runs
        assert not collector.after_collections()
        kept = [_Node() for _ in range(30_000)]  # sockets connecting
        assert sum(s["collections"] for s in gc.get_stats()) > runs
        frozen = gc.get_freeze_count()
        assert collector.after_collections()
        assert gc.get_freeze_count() >= frozen + len(kept) - 20_000
    finally:
        collector.uninstall()
        gc.set_threshold(*before)
