"""runtime/collector.py: what the web process freezes, when, and what it gives back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runtime.collector import Collector, SocketCounts


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


def test_a_thaw_comes_once_enough_sockets_frozen_open_have_closed() -> None:
    """Each socket closed after a freeze caught it open may leave its transport's cycle
    frozen (~3-6 KiB): under churn, a thaw per `thaw_after_closed` closes bounds that, not
    only the hourly one."""
    sockets = SocketCounts()
    collector = Collector(thaw_interval_s=3600, thaw_after_closed=100, sockets=sockets)
    try:
        collector.install()  # start-up: no socket open, nothing counted
        sockets.closed = 500
        assert collector.frozen_then_closed() == 0 and not collector.thaw_due(1.0)
        sockets.open = 40
        gc.collect()
        assert collector.after_full_collections()  # catches 40 open sockets
        sockets.open, sockets.closed = 10, 530
        assert collector.frozen_then_closed() == 30 and not collector.thaw_due(1.0)
        gc.collect()
        collector.after_full_collections()  # a later freeze does not move the count back
        sockets.closed = 600
        assert collector.frozen_then_closed() == 100 and collector.thaw_due(1.0)
        collector.thaw()
        assert gc.get_freeze_count() == 0
        assert collector.frozen_then_closed() == 0 and not collector.thaw_due(1.0)
        assert collector.thaw_due(3600.0)  # the hourly thaw, as before
    finally:
        collector.uninstall()
