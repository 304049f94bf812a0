"""Translation results keyed by their inputs, so work is done once and shared.

Two lifetimes:
- `per_push`: results for this push only, shared by every proxy with the same inputs
  (the outbound clusters of a namespace, a gateway's listeners);
- `lasting`: results whose key holds *all* their inputs (a cluster: its service, port,
  subset, DestinationRule, endpoints, mesh settings), reused across pushes, so a config
  change rebuilds only what it touched.  Entries unused for a whole push are dropped.

Keys are plain hashable tuples; values are never mutated after they are cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TranslationMemo:
    def __init__(self) -> None:
        self.generation = 0
        self._lasting: dict[Hashable, tuple[int, Any]] = {}
        self._push: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def new_push(self) -> None:
        """Start a push: forget per-push results and lasting ones unused by the last push."""
        self.generation += 1
        self._push = {}
        cutoff = self.generation - 1
        self._lasting = {k: v for k, v in self._lasting.items() if v[0] >= cutoff}

    def per_push(self, key: Hashable, build: Callable[[], T]) -> T:
        if key in self._push:
            self.hits += 1
            return self._push[key]
        self.misses += 1
        value = self._push[key] = build()
        return value

    def lasting(self, key: Hashable, build: Callable[[], T]) -> T:
        entry = self._lasting.get(key)
        if entry is not None:
            self.hits += 1
            if entry[0] != self.generation:
                self._lasting[key] = (self.generation, entry[1])
            return entry[1]
        self.misses += 1
        value = build()
        self._lasting[key] = (self.generation, value)
        return value

    def of(self, obj: Any, tag: str, build: Callable[[], T], *, lasting: bool = False) -> T:
        """A result derived from one object (a resource dict, a message), keyed by identity.

        The object is kept with the result, so its id cannot be reused by another object
        while the entry lives."""
        key = (tag, id(obj))
        store_get = self._lasting.get(key) if lasting else self._push.get(key)
        if store_get is not None:
            held, value = store_get[1] if lasting else store_get
            if held is obj:
                self.hits += 1
                if lasting and store_get[0] != self.generation:
                    self._lasting[key] = (self.generation, (held, value))
                return value
        self.misses += 1
        value = build()
        if lasting:
            self._lasting[key] = (self.generation, (obj, value))
        else:
            self._push[key] = (obj, value)
        return value

    @property
    def size(self) -> int:
        return len(self._lasting)
