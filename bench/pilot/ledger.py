"""What the simulated proxies received and ACKed, and the convergence figures drawn from it.

Pure bookkeeping, no I/O: the load tool's worker processes send `Delivery` records (one per
response a proxy received and ACKed, times from `time.monotonic()`, which on Linux is one
clock for every process of the machine), and the parent asks questions of the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import takewhile

# The xDS types a sidecar subscribes to, in Envoy's order, by their short names.
TYPES = ("CDS", "EDS", "LDS", "RDS")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Proxy `proxy` got a `type` response of `version` at `arrived`, and finished writing
    its ACK (or NACK) at `acked`."""

    proxy: int
    type: str
    version: str
    arrived: float
    acked: float
    resources: int
    size: int
    nacked: bool = False


@dataclass(frozen=True)
class Spread:
    """One (type, version) across proxies."""

    type: str
    version: str
    proxies: int
    first_arrival: float
    last_arrival: float
    last_ack: float

    @property
    def arrival_spread_s(self) -> float:
        return self.last_arrival - self.first_arrival


@dataclass(frozen=True)
class Convergence:
    """Every proxy has ACKed something newer than a mark, for each of `types`."""

    types: tuple[str, ...]
    # Per type: version -> number of proxies whose first new ACK was of it.
    versions: dict[str, dict[str, int]]
    first_arrival: float
    last_arrival: float
    last_ack: float
    # Per type, the moment its last proxy ACKed.
    last_ack_by_type: dict[str, float]

    @property
    def same_version(self) -> bool:
        return all(len(v) == 1 for v in self.versions.values())


def _first_since(history: list[Delivery], since: float) -> Delivery | None:
    """The first delivery that arrived at or after `since` (histories are in arrival order;
    scanning from the end touches only the new ones)."""
    found = None
    for d in reversed(history):
        if d.arrived < since:
            break
        found = d
    return found


@dataclass
class Ledger:
    """Every ACKed delivery, per type and proxy, in arrival order."""

    proxies: int
    _by_type: dict[str, dict[int, list[Delivery]]] = field(default_factory=dict)
    nacks: int = 0
    deliveries: int = 0
    bytes: int = 0

    def add(self, deliveries: Iterable[Delivery]) -> None:
        for d in deliveries:
            self.deliveries += 1
            self.bytes += d.size
            if d.nacked:
                self.nacks += 1
                continue
            self._by_type.setdefault(d.type, {}).setdefault(d.proxy, []).append(d)

    def latest(self) -> dict[str, dict[str, int]]:
        """Per type: the version each proxy ACKed last -> number of proxies on it."""
        out: dict[str, dict[str, int]] = {}
        for type_, per_proxy in self._by_type.items():
            counts = out.setdefault(type_, {})
            for history in per_proxy.values():
                version = max(history, key=lambda d: d.arrived).version
                counts[version] = counts.get(version, 0) + 1
        return out

    def spread(self, type_: str, version: str) -> Spread | None:
        """Each proxy's first delivery of (`type_`, `version`), across proxies."""
        firsts = []
        for history in self._by_type.get(type_, {}).values():
            first = next((d for d in history if d.version == version), None)
            if first is not None:
                firsts.append(first)
        if not firsts:
            return None
        return Spread(type_, version, len(firsts), min(d.arrived for d in firsts), max(d.arrived for d in firsts),
                      max(d.acked for d in firsts))

    def converged(self, types: Iterable[str], since: float) -> Convergence | None:
        """None until every proxy has ACKed, for each of `types`, a response that arrived at
        or after `since`; then when (each proxy counted at its first such response).

        Times, not version names, tell new from old: a version can come back (an endpoint
        added and removed again makes the registry, hence the version, what it was)."""
        types = tuple(types)
        versions: dict[str, dict[str, int]] = {}
        first_arrival, last_arrival, last_ack = float("inf"), 0.0, 0.0
        last_by_type: dict[str, float] = {}
        for type_ in types:
            per_proxy = self._by_type.get(type_, {})
            if len(per_proxy) < self.proxies:
                return None
            firsts: list[Delivery] = []
            for history in per_proxy.values():
                first = _first_since(history, since)
                if first is None:
                    return None
                firsts.append(first)
            counts: dict[str, int] = {}
            for d in firsts:
                counts[d.version] = counts.get(d.version, 0) + 1
            versions[type_] = counts
            first_arrival = min(first_arrival, *(d.arrived for d in firsts))
            last_arrival = max(last_arrival, *(d.arrived for d in firsts))
            last_by_type[type_] = max(d.acked for d in firsts)
            last_ack = max(last_ack, last_by_type[type_])
        return Convergence(types, versions, first_arrival, last_arrival, last_ack, last_by_type)

    def types_since(self, since: float) -> set[str]:
        """Types any proxy received a response of at or after `since`."""
        return {t for t, per_proxy in self._by_type.items()
                if any(h and h[-1].arrived >= since for h in per_proxy.values())}

    def largest_since(self, type_: str, since: float) -> int:
        """The most resources any one response of `type_` carried at or after `since`: an
        endpoint change should move one load assignment, not every one."""
        return max((d.resources for per_proxy in self._by_type.get(type_, {}).values()
                    for d in takewhile(lambda d: d.arrived >= since, reversed(per_proxy))), default=0)
