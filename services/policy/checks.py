"""One check, whichever transport asked: the check cache, else the rules; counted by
outcome.  The gRPC API (`api`) and the HTTP one (`http_checks`) both answer from here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.policy.cache import CheckCache
from services.policy.engine import Decision, Engine


class Checks:
    def __init__(self, engine: Callable[[], Engine], cache: CheckCache[Decision], registry: CollectorRegistry) -> None:
        self._engine = engine
        self._cache = cache
        self._checks = Counter("policy_checks", "Checks answered, by outcome and whether the cache answered",
                               ["outcome", "cached"], registry=registry)
        # Children resolved once: a label lookup per check is measurable at thousands a second.
        self._counted = {(ok, cached): self._checks.labels("allowed" if ok else "denied", str(cached).lower())
                         for ok in (True, False) for cached in (True, False)}
        Gauge("policy_check_cache_hit_rate", "Share of checks the cache answered", registry=registry).set_function(
            lambda: cache.hit_rate)

    def decide(self, found: dict[str, Any]) -> Decision:
        decision = self._cache.get(found)
        cached = decision is not None
        if decision is None:
            decision, read = self._engine().check(found)
            self._cache.put(found, read, decision, valid_s=decision.valid_s, uses=decision.uses)
        self._counted[decision.ok, cached].inc()
        return decision
