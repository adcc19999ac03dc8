"""runtime/collector.py: what the web process freezes, when, and what it gives back."""

from __future__ import annotations

import gc
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
    assert not collector.after_full_collections()  # none since the freeze
    survivors = [_Node() for _ in range(1000)]
    gc.collect()
    assert collector.collections[2] >= 1 and collector.max_pause_s[2] > 0
    assert collector.after_full_collections()  # the survivors are frozen now
    assert gc.get_freeze_count() >= frozen + len(survivors)
    assert not collector.after_full_collections()


def test_a_frozen_object_is_freed_by_its_count_and_a_thaw_frees_frozen_cycles(
        collector: Collector) -> None:
    collector.install()
    plain, a, b = _Node(), _Node(), _Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    gc.collect()
    collector.after_full_collections()
    frozen = gc.get_freeze_count()
    del plain
    assert gc.get_freeze_count() == frozen - 1
    del a, b
    gc.collect()
    assert gc.get_freeze_count() == frozen - 1  # frozen in a cycle: kept until a thaw
    collector.thaw()
    assert gc.get_freeze_count() == 0
    assert gc.collect() >= 2
