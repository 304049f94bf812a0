"""Translation results keyed by their inputs, so work is done once and shared.

Three lifetimes:
- `per_push`: results for this push only, shared by every proxy with the same inputs
  (the outbound clusters of a namespace, a gateway's listeners);
- `lasting`: results whose key holds *all* their inputs (a cluster: its service, port,
  subset, DestinationRule, endpoints, mesh settings), reused across pushes, so a config
  change rebuilds only what it touched.  Entries unused for a whole push are dropped;
- `beside_routing`: results no VirtualService can change (a sidecar's inbound side and
  security filters), kept across pushes that changed only VirtualServices, and across pushes
  that changed only endpoints unless they read endpoints beyond what their `valid` check
  covers; dropped by any other push (the caller of `new_push` says which it is).  A routing
  change then costs the routes it touched, not a thousand proxies' whole translation, even
  when endpoints moved since the last one.

A push that changed only endpoints translates almost nothing (snapshots are carried over:
see xds/cache.py), so it does not age what the last translating push used: that push's
entries stay until a push that translates again, beside whatever the latest push used.

Keys are plain hashable tuples; values are never mutated after they are cached.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")

# What a push changed, as `new_push` is told.
FULL = "full"
ROUTING = "routing"  # only VirtualServices
ENDPOINTS = "endpoints"  # only endpoints


class TranslationMemo:
    def __init__(self) -> None:
        self.generation = 0
        # The generation of the last push that was not of endpoints only.
        self._translated = 0
        self._lasting: dict[Hashable, tuple[int, Any]] = {}
        self._push: dict[Hashable, Any] = {}
        self._beside_routing: dict[Hashable, tuple[int, Any]] = {}
        # `beside_routing` results that read endpoints: dropped by an endpoint change too.
        self._beside_routing_endpoints: dict[Hashable, tuple[int, Any]] = {}
        # How many entries of `_lasting` and `_beside_routing` the last translating push left.
        self._marks = (0, 0)
        self.hits = 0
        self.misses = 0

    def new_push(self, kind: str = FULL) -> None:
        """Start a push that changed `kind` (FULL, ROUTING or ENDPOINTS): forget per-push
        results, and kept ones used neither by the push just finished nor by the last push
        that translated; unless the push changed only VirtualServices or only endpoints,
        forget the `beside_routing` ones too, and those that read endpoints unless it
        changed only VirtualServices."""
        finished, translated = self.generation, self._translated
        self.generation += 1
        self._push = {}
        if kind == ENDPOINTS:
            self._beside_routing_endpoints = {}
            if finished == translated:
                # What the translating push left is kept whole until the next one: mark where
                # the entries endpoint pushes add begin.
                self._marks = (len(self._lasting), len(self._beside_routing))
            for store, mark in zip((self._lasting, self._beside_routing), self._marks, strict=True):
                _drop_unused_since(store, mark, finished)
            return

        def aged(store: dict[Hashable, tuple[int, Any]]) -> dict[Hashable, tuple[int, Any]]:
            return {k: v for k, v in store.items() if v[0] >= finished or v[0] == translated}

        self._lasting = aged(self._lasting)
        self._beside_routing = aged(self._beside_routing) if kind == ROUTING else {}
        self._beside_routing_endpoints = aged(self._beside_routing_endpoints) if kind == ROUTING else {}
        self._translated = self.generation

    def per_push(self, key: Hashable, build: Callable[[], T]) -> T:
        if key in self._push:
            self.hits += 1
            return self._push[key]
        self.misses += 1
        value = self._push[key] = build()
        return value

    def lasting(self, key: Hashable, build: Callable[[], T]) -> T:
        return self._kept(self._lasting, key, build)

    def beside_routing(self, key: Hashable, build: Callable[[], T], *, reads_endpoints: bool = False,
                       valid: Callable[[T], bool] | None = None) -> T:
        """`build()` for `key`, kept until a push changes more than VirtualServices, or, if
        it `reads_endpoints`, more than endpoints.  `valid`: whether a kept result still
        holds for this push (what it read of endpoints unchanged); if not, built again."""
        store = self._beside_routing_endpoints if reads_endpoints else self._beside_routing
        return self._kept(store, key, build, valid)

    def _kept(self, store: dict[Hashable, tuple[int, Any]], key: Hashable, build: Callable[[], T],
              valid: Callable[[T], bool] | None = None) -> T:
        """A result kept across pushes, stamped with the last push that used it."""
        entry = store.get(key)
        if entry is not None and (valid is None or valid(entry[1])):
            self.hits += 1
            if entry[0] != self.generation:
                store[key] = (self.generation, entry[1])
            return cast(T, entry[1])
        self.misses += 1
        value = build()
        store[key] = (self.generation, value)
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

    def note_serialized(self, message: Any, value: bytes) -> None:
        """`message` was parsed from `value` (see `sidecar_outbound`'s route configurations):
        encoding it for Envoy takes these bytes rather than serialising it again."""
        self.of(message, "serialized", lambda: value, lasting=True)

    def take_serialized(self, message: Any) -> bytes | None:
        """What `note_serialized` recorded for `message`, if anything, let go of: it is
        encoded once (the encoding is kept), and a namespace's route configuration is ~435 KB
        that would otherwise stay until a push leaves it unused."""
        key = ("serialized", id(message))
        entry = self._lasting.get(key)
        if entry is None:
            return None
        held, value = entry[1]
        if held is not message:
            return None
        del self._lasting[key]
        return cast(bytes, value)

    @property
    def size(self) -> int:
        return len(self._lasting)


def _drop_unused_since(store: dict[Hashable, tuple[int, Any]], mark: int, finished: int) -> None:
    """Drop the entries after the first `mark` (dicts keep insertion order: those are the
    ones endpoint pushes added) that the push just finished did not use.  An endpoint push
    then costs what it added, not a walk over the tens of thousands the last translation
    keeps."""
    stale = [key for key, entry in itertools.islice(store.items(), mark, None) if entry[0] < finished]
    for key in stale:
        del store[key]
