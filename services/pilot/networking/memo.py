"""Translation results keyed by their inputs, so work is done once and shared.

Three lifetimes:
- `per_push`: results for this push only, shared by every proxy with the same inputs
  (the outbound clusters of a namespace, a gateway's listeners);
- `lasting`: results whose key holds *all* their inputs (a cluster: its service, port,
  subset, DestinationRule, endpoints, mesh settings), reused across pushes, so a config
  change rebuilds only what it touched.  Entries unused for a whole push are dropped;
- `beside_routing`: results no VirtualService can change (a sidecar's inbound side and
  security filters), kept across pushes that changed only VirtualServices and dropped by
  any other push (the caller of `new_push` says which it is).  A routing change then
  costs the routes it touched, not a thousand proxies' whole translation.

Keys are plain hashable tuples; values are never mutated after they are cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class TranslationMemo:
    def __init__(self) -> None:
        self.generation = 0
        self._lasting: dict[Hashable, tuple[int, Any]] = {}
        self._push: dict[Hashable, Any] = {}
        self._beside_routing: dict[Hashable, tuple[int, Any]] = {}
        self.hits = 0
        self.misses = 0

    def new_push(self, *, routing_only: bool = False) -> None:
        """Start a push: forget per-push results and lasting ones unused by the last push;
        unless the push changed nothing but VirtualServices (`routing_only`), forget the
        `beside_routing` ones too."""
        self.generation += 1
        self._push = {}
        cutoff = self.generation - 1
        self._lasting = {k: v for k, v in self._lasting.items() if v[0] >= cutoff}
        self._beside_routing = {k: v for k, v in self._beside_routing.items() if v[0] >= cutoff} \
            if routing_only else {}

    def per_push(self, key: Hashable, build: Callable[[], T]) -> T:
        if key in self._push:
            self.hits += 1
            return self._push[key]
        self.misses += 1
        value = self._push[key] = build()
        return value

    def lasting(self, key: Hashable, build: Callable[[], T]) -> T:
        return self._kept(self._lasting, key, build)

    def beside_routing(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()` for `key`, kept until a push changes more than VirtualServices."""
        return self._kept(self._beside_routing, key, build)

    def _kept(self, store: dict[Hashable, tuple[int, Any]], key: Hashable, build: Callable[[], T]) -> T:
        """A result kept across pushes, stamped with the last push that used it."""
        entry = store.get(key)
        if entry is not None:
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

    @property
    def size(self) -> int:
        return len(self._lasting)
