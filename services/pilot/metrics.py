"""Pilot's Prometheus metrics, with Istio's names where Istio has one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.envoy import short_type
from services.pilot.model.proxy import Proxy
from services.pilot.xds.connection import Observer


class PilotMetrics(Observer):
    def __init__(self, registry: CollectorRegistry) -> None:
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
        self.push_contexts = Counter("pilot_push_contexts", "push contexts built", registry=registry)
        self.config_revision = Gauge("pilot_config_revision", "mesh-config KV revision served", registry=registry)

    def sent(self, proxy: Proxy, type_url: str, version: str, trigger: str) -> None:
        self.pushes.labels(short_type(type_url), trigger).inc()

    def acked(self, proxy: Proxy, type_url: str, version: str, latency_s: float) -> None:
        self.acks.labels(short_type(type_url)).inc()
        self.ack_latency.labels(short_type(type_url)).observe(latency_s)

    def nacked(self, proxy: Proxy, type_url: str, version: str, message: str) -> None:
        self.nacks.labels(short_type(type_url)).inc()
