from __future__ import annotations

import gc
import platform
import weakref
from collections.abc import Iterator

import pytest

from services.pilot.heap import HeapKeeper, malloc_trim


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    # The freeze is process-wide: the rest of the suite gets its collector back.
    yield
    gc.unfreeze()


def _garbage_cycle() -> weakref.ref[_Node]:
    """A cycle nothing refers to: only the cyclic collector can free it."""
    return weakref.ref(_Node())


def test_a_push_takes_what_is_alive_out_of_the_collectors_reach() -> None:
    gc.collect()
    cycle = _garbage_cycle()
    HeapKeeper(300.0).push_started()
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert cycle() is not None


def test_the_full_collection_frees_cycles_the_freeze_held() -> None:
    keeper = HeapKeeper(300.0)
    cycle = _garbage_cycle()
    keeper.push_started()
    assert keeper.collect_all() >= 1
    assert cycle() is None
    # Afterwards the survivors are frozen again, as after a push.
    assert gc.get_freeze_count() > 0


def test_interval_zero_leaves_the_collector_alone() -> None:
    keeper = HeapKeeper(0.0)
    assert not keeper.enabled
    cycle = _garbage_cycle()
    keeper.push_started()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert cycle() is None


def test_each_push_gives_freed_memory_back_where_glibc_can() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's; elsewhere pilot leaves freed memory with the allocator")
    # Under glibc the trim must be found, not silently skipped.
    assert malloc_trim() is not None
    trims: list[None] = []
    keeper = HeapKeeper(0.0)
    assert keeper.trim is not None
    keeper.trim = lambda: trims.append(None)
    keeper.push_started()
    keeper.push_started()
    assert len(trims) == 2
    assert HeapKeeper(0.0, trim=False).trim is None


def test_install_spaces_young_collections_and_interval_zero_does_not() -> None:
    before = gc.get_threshold()
    try:
        HeapKeeper(0.0, young_threshold=40_000).install()
        assert gc.get_threshold() == before
        HeapKeeper(300.0, young_threshold=0).install()
        assert gc.get_threshold() == before
        HeapKeeper(300.0, young_threshold=40_000).install()
        assert gc.get_threshold() == (40_000, *before[1:])
    finally:
        gc.set_threshold(*before)
