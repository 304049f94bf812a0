"""Rates for the service graph: Istio's counters sampled every few seconds, differenced over
a window, per (source workload, destination workload, service).

Edges come from what destinations reported (they know the caller by its address and its
mTLS certificate); calls to workloads without a sidecar, which report nothing, come from
what the caller reported.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from services.telemetry.graph import Edge, Node
from services.telemetry.metrics import BUCKETS, MetricStore

EdgeKey = tuple[str, ...]


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    bytes: int = 0
    mtls: bool = False
    protocol: str = "http"


def _node(labels: dict[str, str], side: str) -> Node:
    return Node(workload=labels[f"{side}_workload"], namespace=labels[f"{side}_workload_namespace"],
                app=labels[f"{side}_app"] if labels[f"{side}_app"] != "unknown" else "",
                version=labels[f"{side}_version"] if labels[f"{side}_version"] != "unknown" else "")


def _key(labels: dict[str, str]) -> EdgeKey:
    return (labels["source_workload"], labels["source_workload_namespace"], labels["destination_workload"],
            labels["destination_workload_namespace"], labels["destination_service"])


def tally(store: MetricStore) -> tuple[dict[EdgeKey, _Tally], dict[EdgeKey, tuple[Node, Node]]]:
    """Totals so far per edge (destination reports first, caller reports where none)."""
    totals: dict[EdgeKey, _Tally] = {}
    nodes: dict[EdgeKey, tuple[Node, Node]] = {}
    reported_by_destination: set[EdgeKey] = set()
    http = sorted(store.http_series(), key=lambda s: s[0]["reporter"] != "destination")
    for labels, requests, buckets, _ in http:
        key = _key(labels)
        if labels["reporter"] == "source" and key in reported_by_destination:
            continue
        if labels["reporter"] == "destination":
            reported_by_destination.add(key)
        entry = totals.setdefault(key, _Tally(protocol=labels["request_protocol"]))
        nodes.setdefault(key, (_node(labels, "source"), _node(labels, "destination")))
        entry.requests += requests
        entry.errors += requests if labels["response_code"].startswith("5") else 0
        entry.buckets = [a + b for a, b in zip(entry.buckets, buckets, strict=True)]
        entry.mtls |= labels["connection_security_policy"] == "mutual_tls"
    for labels, opened, moved in sorted(store.tcp_series(), key=lambda s: s[0]["reporter"] != "destination"):
        key = (*_key(labels), "tcp")
        if labels["reporter"] == "source" and key in reported_by_destination:
            continue
        if labels["reporter"] == "destination":
            reported_by_destination.add(key)
        entry = totals.setdefault(key, _Tally(protocol="tcp"))
        nodes.setdefault(key, (_node(labels, "source"), _node(labels, "destination")))
        entry.requests += opened
        entry.bytes += moved
        entry.mtls |= labels["connection_security_policy"] == "mutual_tls"
    return totals, nodes


def quantile(buckets: list[int], q: float) -> float | None:
    """The q-quantile of a histogram's (non-cumulative) bucket counts, interpolated within
    its bucket as Prometheus' histogram_quantile does."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    running = 0
    for index, count in enumerate(buckets):
        if running + count >= rank and count:
            lower = BUCKETS[index - 1] if index > 0 else 0.0
            upper = BUCKETS[index] if index < len(BUCKETS) else BUCKETS[-1]
            return lower + (upper - lower) * (rank - running) / count
        running += count
    return float(BUCKETS[-1])


class TrafficWindow:
    """Samples the store every `interval_s`; `edges()` are the rates over the last `window_s`."""

    def __init__(self, store: MetricStore, *, window_s: float = 30.0, interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self.window_s = window_s
        self._interval_s = interval_s
        self._clock = clock
        self._samples: deque[tuple[float, dict[EdgeKey, _Tally]]] = deque()

    def sample(self) -> None:
        now = self._clock()
        self._samples.append((now, tally(self._store)[0]))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._interval_s)

    def edges(self) -> list[Edge]:
        now = self._clock()
        totals, nodes = tally(self._store)
        then, before = self._samples[0] if self._samples else (now, {})
        span = max(now - then, self._interval_s)
        edges: list[Edge] = []
        for key, current in totals.items():
            old = before.get(key, _Tally())
            requests = current.requests - old.requests
            if requests < 0:  # the series expired and came back: count from zero
                old, requests = _Tally(), current.requests
            source, destination = nodes[key]
            errors = current.errors - old.errors
            buckets = [a - b for a, b in zip(current.buckets, old.buckets, strict=True)]
            tcp = current.protocol == "tcp"
            edges.append(Edge(
                source=source, destination=destination, destination_service=key[4], protocol=current.protocol,
                request_rate=requests / span, error_rate=errors / requests if requests and not tcp else 0.0,
                p99_ms=None if tcp else quantile(buckets, 0.99), mtls=current.mtls,
                bytes_rate=(current.bytes - old.bytes) / span if tcp else 0.0))
        return edges
