"""A bucket kept in memory: every key's latest value, and whether the first full read is done.

What each service watching a bucket needs, once: follow `watch()`, keep the values, call
back on the initial sync and on every change after it.  Decoding stays with the caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import structlog

from libs.bus._kv import KvBucket, KvSynced

log = structlog.get_logger(__name__)
T = TypeVar("T")


class KvMirror:
    def __init__(self, bucket: KvBucket, *, on_change: Callable[[], None] = lambda: None,
                 keys: str = ">") -> None:
        self._bucket = bucket
        self._on_change = on_change
        self._keys = keys
        self.values: dict[str, bytes] = {}
        self.revision = 0
        self.synced = False

    def decode(self, parse: Callable[[bytes], T]) -> list[T]:
        """Every value `parse` can read; the others are logged and skipped (only the writer
        is to blame, and the rest must keep serving)."""
        found: list[T] = []
        for key, value in self.values.items():
            try:
                found.append(parse(value))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("ignoring an unreadable entry", bucket=self._bucket.name, key=key, error=repr(exc))
        return found

    async def run(self) -> None:
        """Follow the bucket until cancelled; `on_change` after the initial sync and after
        every later write or delete."""
        async with contextlib.aclosing(self._bucket.watch(self._keys)) as events:
            async for event in events:
                if isinstance(event, KvSynced):
                    if not self.synced:
                        self.synced = True
                        self._on_change()
                    continue
                self.revision = max(self.revision, event.revision)
                if event.value is None:
                    self.values.pop(event.key, None)
                else:
                    self.values[event.key] = event.value
                if self.synced:
                    self._on_change()
