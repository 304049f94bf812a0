"""The check cache: a decision stands for every request that agrees with it on what it
read, for the handler's `validDuration` and at most `validUseCount` times (Mixer's
"referenced attributes" cache, which lived in each proxy; here it lives in the policy
service, where one cached decision serves every proxy).

Decisions reading different attributes (a rule's `&&` short-circuits) keep separate
signatures; a lookup tries each signature seen, newest first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from services.policy.attributes import signature_values

T = TypeVar("T")
Signature = frozenset[tuple[str, str | None]]


@dataclass
class _Entry(Generic[T]):
    value: T
    expires_at: float
    uses_left: int


class CheckCache(Generic[T]):
    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._signatures: OrderedDict[Signature, OrderedDict[tuple[Any, ...], _Entry[T]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, attributes: Mapping[str, Any]) -> T | None:
        now = self._clock()
        for signature, entries in reversed(self._signatures.items()):
            key = signature_values(attributes, signature)
            entry = entries.get(key)
            if entry is None:
                continue
            if entry.expires_at <= now or entry.uses_left <= 0:
                del entries[key]
                continue
            entry.uses_left -= 1
            self.hits += 1
            return entry.value
        self.misses += 1
        return None

    def put(self, attributes: Mapping[str, Any], read: Signature, value: T, *, valid_s: float, uses: int) -> None:
        if valid_s <= 0 or uses <= 0:
            return
        entries = self._signatures.setdefault(read, OrderedDict())
        self._signatures.move_to_end(read)
        entries[signature_values(attributes, read)] = _Entry(value, self._clock() + valid_s, uses)
        if sum(len(e) for e in self._signatures.values()) > self._max:
            # The oldest signature's oldest entry goes first.
            oldest = next(iter(self._signatures.values()))
            oldest.popitem(last=False)
            if not oldest:
                self._signatures.popitem(last=False)

    def clear(self) -> None:
        self._signatures.clear()

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
