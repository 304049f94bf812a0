"""Telemetry's run(): what Istio 1.0's istio-telemetry (Mixer) did for Envoy's reports.

Flows:
- every proxy streams access log entries over gRPC (`als`) -> each becomes one report,
  joined with the directory (who is at an address, which service a workload serves) ->
  Istio's standard metrics (`metrics`) served on :42422/metrics, and one access log line;
- every proxy sends Zipkin spans to :9411 (`traces`) -> Zipkin's query API on the same port;
- the metrics, sampled over a window (`traffic`) -> the live service graph, :42422/graph;
- mesh-config (ServiceEntries, WorkloadEntries, the mesh config) and mesh-workloads (what
  agents register) from NATS -> the directory and the access log encoding.
Metrics live in memory: a restart starts the counters again, as Prometheus expects of one.
"""

from __future__ import annotations

import sys
from typing import TextIO

import grpc
import structlog
from envoy.service.accesslog.v3 import als_pb2_grpc
from prometheus_client import CollectorRegistry, Gauge

from libs.bus import Bus, BusSettings, track_connection
from libs.config import MESH_CONFIG_KIND, Resource
from libs.config.directory import Directory
from libs.config.mesh_view import mesh_view
from libs.runtime import MonitoringServer, Readiness, Supervisor, serve_grpc
from services.telemetry.access_log import AccessLogWriter
from services.telemetry.als import AccessLogService
from services.telemetry.graph import graph_router
from services.telemetry.metrics import MetricStore
from services.telemetry.overrides import OverrideIndex
from services.telemetry.settings import TelemetrySettings
from services.telemetry.traces import SpanStore, zipkin_router
from services.telemetry.traffic import TrafficWindow

log = structlog.get_logger(__name__)



class Telemetry:
    def __init__(self, settings: TelemetrySettings, registry: CollectorRegistry, out: TextIO = sys.stdout) -> None:
        self.settings = settings
        self.store = MetricStore(expiry_s=settings.metric_expiry_s)
        self.istio_registry = CollectorRegistry()
        self.istio_registry.register(self.store)
        self.readiness = Readiness()
        self.readiness.require("nats-connected")
        self.directory = Directory()
        self.writer: AccessLogWriter | None = None
        if settings.access_log:
            stream = out if settings.access_log == "-" else open(settings.access_log, "a", buffering=1)  # noqa: SIM115
            self.writer = AccessLogWriter(lambda line: print(line, file=stream, flush=True))
        self.spans = SpanStore(max_traces=settings.max_traces)
        self.traffic = TrafficWindow(self.store, window_s=settings.graph_window_s)
        self.overrides = OverrideIndex()
        self.als = AccessLogService(self.store, lambda: self.directory, self.writer, registry, lambda: self.overrides)
        Gauge("telemetry_metric_series", "Series of Istio's metrics held", registry=registry).set_function(
            lambda: self.store.series)
        Gauge("telemetry_config_revision", "The mesh-config revision the join and overrides were built from",
              registry=registry).set_function(lambda: self.view.revision)
        Gauge("telemetry_access_log_streams", "Proxies streaming access logs", registry=registry).set_function(
            lambda: self.als.streams)
        self.view = mesh_view(settings.registries, settings.kube_config, settings.domain_suffix, self.readiness,
                              self.refresh)

    def refresh(self, resources: list[Resource], directory: Directory) -> None:
        """The new join, log encoding and overrides, from the latest of both buckets."""
        self.directory = directory
        mesh = next((r for r in resources if r.kind == MESH_CONFIG_KIND and r.name == "istio"
                     and r.namespace == self.settings.system_namespace), None)
        if self.writer is not None:
            self.writer.encoding = (mesh.spec.get("accessLogEncoding", "TEXT") if mesh else "TEXT")
        default_root = self.settings.system_namespace
        root = mesh.spec.get("rootNamespace", default_root) if mesh else default_root
        self.overrides = OverrideIndex.build(resources, root)

    async def run(self, supervisor: Supervisor, bus: Bus) -> None:
        await self.view.start(supervisor, bus)
        supervisor.start("traffic-window", self.traffic.run)


async def run(settings: TelemetrySettings) -> None:
    supervisor = Supervisor("telemetry", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    telemetry = Telemetry(settings, registry)
    servers = [
        ("monitoring", MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                        readiness=telemetry.readiness, registry=registry)),
        ("prometheus", MonitoringServer(
            host=settings.prometheus_address, port=settings.prometheus_port, readiness=telemetry.readiness,
            registry=telemetry.istio_registry, metrics=telemetry.store.exposition,
            routers=(graph_router(telemetry.traffic.edges, window_s=settings.graph_window_s),))),
    ]
    if settings.zipkin_port:
        servers.append(("zipkin", MonitoringServer(host=settings.zipkin_address, port=settings.zipkin_port,
                                                   readiness=telemetry.readiness, registry=CollectorRegistry(),
                                                   routers=(zipkin_router(telemetry.spans),))))
    for name, server in servers:
        supervisor.start(name, server.serve)
        supervisor.on_stop(name, server.stop)
    bus = await Bus.connect(BusSettings(url=settings.nats_url, connect_timeout_s=None), name="telemetry")
    telemetry.readiness.mark("nats-connected")
    track_connection(bus, telemetry.readiness, grace_s=settings.nats_grace_s)
    try:
        als = grpc.aio.server()
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(telemetry.als, als)
        await serve_grpc(supervisor, als, settings.als_address, settings.als_port, name="access log service")
        await telemetry.run(supervisor, bus)
        await supervisor.wait()
    finally:
        await bus.close()
