"""Pilot's heap: CPython's full collections kept off the push path, freed memory given back.

Pilot's heap is large and mostly long-lived: the push context, every proxy's translation and
the caches behind them (about two million tracked objects at 1,000 services and 1,000
proxies).  CPython starts a full collection whenever the objects that survived its younger
generations pass a quarter of the oldest one, and a push that replaces the context and every
proxy's config passes that almost every time.  In the scale benchmark that was 22 full
collections of 80-270 ms in 50 changes, each on the push path, and each after the first three
found nothing to free: a push's objects die by reference counting when the next push
replaces them, not as cycles.

So each push begins by freezing what is alive (`gc.freeze`): those objects leave the
collector's generations, which then hold only what was made since.  Reference counting frees
frozen objects as before; what freezing gives up is collecting reference cycles among them.
A full collection of everything every `full_collection_interval_s` (unfreeze, collect,
freeze) bounds what such cycles can hold, at one full pause per interval instead of one per
push.

Between full collections, the young generation is collected every `young_threshold`
allocations rather than CPython's 700.  A push allocates a few hundred thousand objects that
mostly live until the next push (snapshots, encodings, caches), so at 700 the collector
walked them again and again on their way to the old generation: at the scale benchmark's
size it took ~40 ms of a VirtualService push's ~190 ms in process.  At 50,000 a young
collection pauses for a few milliseconds, a handful of times a push.

Memory a push frees (response and request buffers, protobuf arenas) goes back to glibc's
heap, not to the system, and stays in RSS.  In the scale benchmark pilot's RSS held at ~420
MB through VirtualService changes and climbed to 550 - 600 MB over the first endpoint
changes; with glibc's `malloc_trim` at each push start (~3 ms there) it peaked at 509 MB.
So each push also trims, where the C library has `malloc_trim`.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


def malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class HeapKeeper:
    """Freezes the heap at each push and collects all of it on a timer; trims freed memory
    back to the system at each push.

    `full_collection_interval_s` 0 leaves CPython's collector as it is; `trim` False leaves
    freed memory with the allocator."""

    def __init__(self, full_collection_interval_s: float, *, trim: bool = True,
                 young_threshold: int = 50_000) -> None:
        self.interval_s = full_collection_interval_s
        self.trim = malloc_trim() if trim else None
        self.young_threshold = young_threshold

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0

    def push_started(self) -> None:
        """The last push's objects (and everything else alive) leave the young generations,
        and what it freed goes back to the system."""
        if self.enabled:
            gc.freeze()
        if self.trim is not None:
            self.trim()

    def collect_all(self) -> int:
        """One full collection, frozen objects included; returns the unreachable objects found."""
        started = time.perf_counter()
        gc.unfreeze()
        try:
            found = gc.collect()
        finally:
            gc.freeze()
        log.info("full garbage collection", unreachable=found, frozen=gc.get_freeze_count(),
                 seconds=round(time.perf_counter() - started, 3))
        return found

    def install(self) -> None:
        """Young collections every `young_threshold` allocations (0: CPython's own).  The
        setting is the process's, so the service that owns the process calls this once."""
        if self.enabled and self.young_threshold > 0:
            _, middle, old = gc.get_threshold()
            gc.set_threshold(self.young_threshold, middle, old)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.collect_all()
