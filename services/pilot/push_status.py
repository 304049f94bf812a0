"""What pilot remembers about its recent pushes: for /debug/push_status, /debug/syncz's
LAST CONVERGENCE and the `pilot_proxy_convergence_time` histogram.

A push starts when the debouncer fires.  Its `changed_at` is when the first config change
it carries arrived from the KV watch.  A proxy has converged on a push once it has ACKed
every type that push sent it (or the push sent it nothing); its convergence time is that
moment minus `changed_at` (Istio's "config change to proxy has all required config").
Times are `time.monotonic()` seconds; `wall()` turns one into a Unix timestamp for display.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PushRecord:
    version: str
    # "initial" (mesh-config loaded) or "config" (KV changes).
    trigger: str
    # KV events merged into this push by the debouncer.
    changes: int
    # When the first of those events arrived (None for the initial push).
    changed_at: float | None
    started_at: float
    # Seconds spent building the push context (snapshots are built lazily per proxy class).
    duration_s: float
    # Streams woken for this push.
    proxies: int


class PushHistory:
    """The last `keep` pushes, and the config changes waiting for the next one."""

    def __init__(self, keep: int = 100, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: deque[PushRecord] = deque(maxlen=keep)
        self._clock = clock
        self._pending_since: float | None = None
        self._pending = 0

    def changed(self) -> None:
        """A config change arrived; the next push carries it."""
        if self._pending_since is None:
            self._pending_since = self._clock()
        self._pending += 1

    def take_pending(self) -> tuple[float | None, int]:
        """(first change's arrival, number of changes) since the last push; resets both."""
        pending = (self._pending_since, self._pending)
        self._pending_since, self._pending = None, 0
        return pending

    def add(self, record: PushRecord) -> None:
        self._records.append(record)

    @property
    def last(self) -> PushRecord | None:
        return self._records[-1] if self._records else None

    def recent(self, count: int) -> list[PushRecord]:
        """Newest first."""
        return list(reversed(self._records))[:count]

    def find(self, version: str) -> PushRecord | None:
        """The first push that produced `version` (later pushes of the same version carry
        no newer change)."""
        return next((r for r in self._records if r.version == version), None)


def convergence_s(record: PushRecord | None, connected_at: float, synced_at: float) -> float | None:
    """Seconds from the change behind `record` to a proxy's sync at `synced_at`, or None
    when there is no change to measure from or the proxy connected after the push (its
    first sync measures its startup, not the push)."""
    if record is None or record.changed_at is None or connected_at > record.started_at:
        return None
    return max(0.0, synced_at - record.changed_at)


# The two clocks' offset, read once: reading both at every call rendered one reading 1 ms
# apart on two calls now and then, and further apart while the system clock was slewed, so
# /debug/push_status changed between two looks with no push in between.
_WALL_OFFSET = time.time() - time.monotonic()


def wall(monotonic_s: float) -> float:
    """A `time.monotonic()` reading as a Unix timestamp: always the same for one reading."""
    return monotonic_s + _WALL_OFFSET
