"""Pilot's Prometheus metrics, with Istio's names where Istio has one."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.envoy import short_type
from services.pilot.model.proxy import Proxy
from services.pilot.push_status import PushHistory, convergence_s
from services.pilot.xds.stream_state import Observer

# Istio's buckets for pilot_proxy_convergence_time start at 0.1 s; a Python pilot on one
# host converges in milliseconds, so finer buckets come first.
CONVERGENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 20, 30)


class PilotMetrics(Observer):
    def __init__(self, registry: CollectorRegistry, history: PushHistory | None = None) -> None:
        self._history = history or PushHistory()
        self.pushes = Counter("pilot_xds_pushes", "xDS responses sent, by type and trigger",
                              ["type", "trigger"], registry=registry)
        self.nacks = Counter("pilot_total_xds_rejects", "xDS responses NACKed by proxies, by type",
                             ["type"], registry=registry)
        self.acks = Counter("pilot_xds_acks", "xDS responses ACKed by proxies, by type", ["type"],
                            registry=registry)
        self.connected = Gauge("pilot_xds", "connected xDS clients", registry=registry)
        self.ack_latency = Histogram(
            "pilot_xds_ack_latency_seconds", "seconds from sending a response to its ACK", ["type"],
            registry=registry, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.convergence = Histogram(
            "pilot_proxy_convergence_time",
            "seconds from a config change arriving in pilot (its KV event) to a proxy ACKing "
            "everything the push built from it sent",
            registry=registry, buckets=CONVERGENCE_BUCKETS,
        )
        self.push_contexts = Counter("pilot_push_contexts", "push contexts built", registry=registry)
        self.config_revision = Gauge("pilot_config_revision", "mesh-config KV revision served", registry=registry)
        # Each labelled series, found once: every response and every ACK of every stream
        # counts here, and `labels()` validates, stringifies and locks on each call.
        self._series: dict[Hashable, Any] = {}

    def _one(self, metric: Counter | Histogram, type_url: str, *labels: str) -> Any:
        key = (metric, type_url, labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = metric.labels(short_type(type_url), *labels)
        return series

    def count_connections(self, count: Callable[[], int]) -> None:
        """`pilot_xds` reads the live stream count at each scrape, so connects and
        disconnects can never leave it wrong."""
        self.connected.set_function(lambda: float(count()))

    def sent(self, proxy: Proxy, type_url: str, version: str, trigger: str) -> None:
        self._one(self.pushes, type_url, trigger).inc()

    def acked(self, proxy: Proxy, type_url: str, version: str, latency_s: float) -> None:
        self._one(self.acks, type_url).inc()
        self._one(self.ack_latency, type_url).observe(latency_s)

    def nacked(self, proxy: Proxy, type_url: str, version: str, message: str) -> None:
        self._one(self.nacks, type_url).inc()

    def synced(self, proxy: Proxy, version: str, connected_at: float, at: float) -> None:
        seconds = convergence_s(self._history.find(version), connected_at, at)
        if seconds is not None:
            self.convergence.observe(seconds)
