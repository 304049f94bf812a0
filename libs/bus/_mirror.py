"""A bucket kept in memory: every key's latest value, and whether the first full read is done.

What each service watching a bucket needs, once: follow `watch()`, keep the values, call
back on the initial sync and on every change after it.

Two shapes of the one loop:
- `KvMirror` keeps the raw bytes; the caller decodes them when it reads (`decode`).
- `DecodedKvMirror` decodes each value once, as it arrives (`parse`), for a caller that
  reads every value on every change (pilot's mesh-config): a value `parse` refuses is
  logged and skipped, and the key keeps its last readable value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from libs.bus._kv import KvBucket, KvSynced

log = structlog.get_logger(__name__)
T = TypeVar("T")
U = TypeVar("U")


class DecodedKvMirror(Generic[T]):
    def __init__(self, bucket: KvBucket, parse: Callable[[str, bytes], T], *,
                 on_change: Callable[[], None] = lambda: None, keys: str = ">") -> None:
        """`parse(key, value)` raises ValueError, KeyError or TypeError for a value it
        cannot read."""
        self._bucket = bucket
        self._parse = parse
        self._on_change = on_change
        self._keys = keys
        self.values: dict[str, T] = {}
        self.revision = 0
        self.synced = False

    def _store(self, key: str, value: bytes | None, revision: int) -> None:
        if value is None:
            self.values.pop(key, None)
            return
        try:
            self.values[key] = self._parse(key, value)
        except (ValueError, KeyError, TypeError) as exc:
            # Only the writer is to blame, and the rest must keep serving.
            log.error("ignoring an unreadable entry", bucket=self._bucket.name, key=key, revision=revision,
                      error=repr(exc))

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
                if self._unchanged(event.key, event.value):
                    continue
                self._store(event.key, event.value, event.revision)
                if self.synced:
                    self._on_change()

    def _unchanged(self, key: str, value: bytes | None) -> bool:
        """Whether a write leaves the key as it was, and so calls no `on_change`."""
        return False


def _raw(key: str, value: bytes) -> bytes:
    return value


class KvMirror(DecodedKvMirror[bytes]):
    def __init__(self, bucket: KvBucket, *, on_change: Callable[[], None] = lambda: None,
                 keys: str = ">", changes_only: bool = False) -> None:
        """`changes_only`: a write of the bytes the key already holds calls no `on_change`
        (agents rewrite their registration every few seconds to keep it from expiring; a
        reader rebuilding its view on each would do so several times a second for nothing)."""
        super().__init__(bucket, _raw, on_change=on_change, keys=keys)
        self._changes_only = changes_only

    def _unchanged(self, key: str, value: bytes | None) -> bool:
        return self._changes_only and value is not None and self.values.get(key) == value

    def decode(self, parse: Callable[[bytes], U]) -> list[U]:
        """Every value `parse` can read; the others are logged and skipped (only the writer
        is to blame, and the rest must keep serving)."""
        found: list[U] = []
        for key, value in self.values.items():
            try:
                found.append(parse(value))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("ignoring an unreadable entry", bucket=self._bucket.name, key=key, error=repr(exc))
        return found
