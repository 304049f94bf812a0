"""Pilot's run(): NATS in, ADS out, supervised."""

from __future__ import annotations

import os
import socket
import time

import grpc
import structlog
from prometheus_client import CollectorRegistry

from libs.bus import MESH_CONFIG, MESH_WORKLOADS, Bus, BusSettings, track_connection
from libs.config import MESH_CONFIG_KIND
from libs.kube import KubeClient
from libs.pki import CitadelClient, ServingCertificate, ServingIdentity, SpiffeId, root_file, token_from_file
from libs.runtime import MonitoringServer, Readiness, SettingsError, Supervisor, serve_grpc
from services.pilot import debug, debug_dryrun
from services.pilot.config_watch import ConfigWatcher
from services.pilot.debounce import Debouncer
from services.pilot.errors import (
    AmbiguousProxy,
    BodyTooLarge,
    InvalidProposal,
    NotReady,
    ProxyIdMissing,
    ProxyNotConnected,
    UnknownAction,
)
from services.pilot.heap import HeapKeeper
from services.pilot.kube_registry import KubernetesRegistry
from services.pilot.metrics import PilotMetrics
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import ServiceRegistry
from services.pilot.push_status import PushHistory, PushRecord
from services.pilot.secure_xds import GrpcTls
from services.pilot.settings import PilotSettings
from services.pilot.workloads_watch import WorkloadWatcher
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.server import AdsServer

log = structlog.get_logger(__name__)

# The registries `--registries` may name; ServiceEntries and WorkloadEntries are always read.
REGISTRIES = ("nats", "kubernetes")

# A full SotW CDS or LDS for a large mesh exceeds gRPC's 4 MB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Pilot:
    """Wires the config watcher, the push debouncer and the ADS server together."""

    def __init__(self, settings: PilotSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        # Recent pushes, and when the changes they carry arrived (debug and convergence).
        self.history = PushHistory()
        self.metrics = PilotMetrics(registry, self.history)
        self.mesh = MeshConfig(
            root_namespace=settings.root_namespace,
            domain_suffix=settings.domain_suffix,
            outbound_traffic_policy=settings.outbound_traffic_policy,
            trust_domain=settings.trust_domain,
        )
        self.cache = SnapshotCache()
        self.heap = HeapKeeper(settings.full_collection_interval_s, trim=settings.trim_heap,
                               young_threshold=settings.gc_young_threshold)
        self.ads = AdsServer(self.cache, observer=self.metrics, concurrent_sends=settings.push_concurrency)
        self.metrics.count_connections(lambda: len(self.ads.connections))
        self.readiness = Readiness()
        self.readiness.require("nats-connected", "config-synced", "registries-synced")
        self.debouncer = Debouncer(settings.debounce_quiet_s, settings.debounce_max_s,
                                   lambda: self.push("config"))
        # Endpoints move on their own, shorter clock: a workload coming or going should
        # not wait behind a burst of config edits (Istio's users saw EDS held up to 10 s).
        self.endpoint_debouncer = Debouncer(settings.endpoint_debounce_quiet_s, settings.endpoint_debounce_max_s,
                                            lambda: self.push("endpoints"))
        self.watcher: ConfigWatcher | None = None
        self.registries: list[ServiceRegistry] = []

    def push(self, trigger: str = "config") -> None:
        assert self.watcher is not None
        self.heap.push_started()
        changed_at, changes = self.history.take_pending()
        initial = self.history.last is None
        started = time.monotonic()
        snapshot = self.watcher.snapshot()
        push = PushContext.build(snapshot, self.mesh_for(snapshot),
                                 registries=[registry.contents() for registry in self.registries],
                                 previous=self.cache.push_context)
        self.cache.set_push(push)
        self.metrics.push_contexts.inc()
        self.metrics.config_revision.set(self.watcher.revision)
        log.info("push", version=push.version, proxies=len(self.ads.connections))
        self.history.add(PushRecord(
            version=push.version, trigger="initial" if initial else trigger, changes=changes,
            changed_at=None if initial else changed_at, started_at=started, duration_s=time.monotonic() - started,
            proxies=len(self.ads.connections)))
        self.ads.push_all()

    def mesh_for(self, snapshot: ConfigSnapshot) -> MeshConfig:
        """The mesh config `snapshot` makes: its `istio` ConfigMap over pilot's flags."""
        return mesh_from_config(snapshot.of_kind(MESH_CONFIG_KIND), self.mesh, self.settings.system_namespace)

    def _changed(self) -> None:
        """A config event arrived: note when, then debounce the push."""
        self.history.changed()
        self.debouncer.trigger()

    def _endpoints_changed(self) -> None:
        self.history.changed()
        self.endpoint_debouncer.trigger()

    def _synced(self) -> None:
        """Serve only once config and registry are both loaded: an early, partial answer
        would make Envoy drop what it has."""
        assert self.watcher is not None
        registries_synced = all(registry.synced for registry in self.registries)
        if self.watcher.synced:
            self.readiness.mark("config-synced")
        if registries_synced:
            self.readiness.mark("registries-synced")
        if self.watcher.synced and registries_synced and not self.ads.ready:
            self.push()
            self.ads.ready = True

    async def run(self, supervisor: Supervisor, bus: Bus) -> None:
        unknown = set(self.settings.registries) - set(REGISTRIES)
        if unknown:
            raise SettingsError("registries", "--registries / MIZZEN_REGISTRIES",
                                f"{', '.join(sorted(unknown))} unknown; choose from {', '.join(REGISTRIES)}")
        # Every registry is in the list before any watch starts: the first push waits for all.
        if "nats" in self.settings.registries:
            ttl = self.settings.workload_ttl_s
            workloads = WorkloadWatcher(await bus.kv(MESH_WORKLOADS, ttl_s=ttl, expiry_markers_s=ttl),
                                        on_synced=self._synced, on_change=self._endpoints_changed)
            self.registries.append(workloads)
        if "kubernetes" in self.settings.registries:
            client = KubeClient.connect(self.settings.kube_config, environ=os.environ)
            self.registries.append(KubernetesRegistry(client, domain_suffix=self.settings.domain_suffix,
                                                      on_synced=self._synced, on_services_change=self._changed,
                                                      on_endpoints_change=self._endpoints_changed))
        self.watcher = ConfigWatcher(await bus.kv(MESH_CONFIG), on_synced=self._synced, on_change=self._changed)
        supervisor.start("config-watch", self.watcher.run)
        for registry in self.registries:
            registry.start(supervisor)
        supervisor.start("debounce", self.debouncer.run)
        supervisor.start("debounce-endpoints", self.endpoint_debouncer.run)
        if self.heap.enabled:
            self.heap.install()
            supervisor.start("heap", self.heap.run)


def _xds_server(pilot: Pilot) -> grpc.aio.Server:
    server = grpc.aio.server(options=[
        # Explicit, not gRPC's Linux default: replicas sharing the port is a promise.
        ("grpc.so_reuseport", int(pilot.settings.xds_reuse_port)),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
    ])
    server.add_generic_rpc_handlers((pilot.ads.handler(),))
    return server


def _start_secure_xds(supervisor: Supervisor, settings: PilotSettings, pilot: Pilot,
                      registry: CollectorRegistry) -> None:
    """The secure xDS port, listening once citadel has signed pilot's first certificate."""
    if settings.citadel_root_cert is None or settings.citadel_token_file is None:
        raise SettingsError("xds_tls_port", "--xds-tls-port", "needs citadel_root_cert and citadel_token_file: "
                                                              "citadel signs pilot's certificate")
    try:
        root = settings.citadel_root_cert.read_bytes()
    except OSError as exc:
        raise SettingsError("citadel_root_cert", str(settings.citadel_root_cert), exc.strerror or str(exc)) from exc
    # Re-read for every CSR and watched: citadel's root rotation moves pilot's certificate.
    signer = CitadelClient(settings.citadel_address, root_file(settings.citadel_root_cert, root),
                           token_from_file(settings.citadel_token_file), server_name=settings.citadel_server_name)
    supervisor.on_stop("citadel-channel", signer.close)
    tls = GrpcTls()
    identity = ServingIdentity(SpiffeId(settings.trust_domain, settings.system_namespace, settings.service_account),
                               settings.serving_dns_names)
    certificate = ServingCertificate(signer, identity, tls.install, registry, metric_prefix="pilot",
                                     what="secure xDS", ttl_s=settings.serving_cert_ttl_s,
                                     rotation_fraction=settings.cert_rotation_fraction, retry_initial_s=0.2,
                                     retry_max_s=30.0)
    supervisor.start("serving-cert", certificate.run)
    pilot.readiness.require("secure-xds")

    async def serve() -> None:
        await certificate.ready()
        await serve_grpc(supervisor, _xds_server(pilot), settings.xds_address, settings.xds_tls_port,
                         name="secure xds", credentials=tls.credentials())
        pilot.readiness.mark("secure-xds")

    supervisor.start("secure-xds", serve)


def _instance_id() -> str:
    """This pilot, as `mizzenctl proxy-status` names it (Istio shows the istiod pod name)."""
    return f"{socket.gethostname()}-{os.getpid()}"


# The debug API's refusals, mapped here once (see services/pilot/errors.py).
HTTP_STATUS: dict[type[Exception], int] = {
    ProxyIdMissing: 400,
    UnknownAction: 400,
    ProxyNotConnected: 404,
    AmbiguousProxy: 409,
    BodyTooLarge: 413,
    InvalidProposal: 422,
    NotReady: 503,
}


async def run(settings: PilotSettings) -> None:
    supervisor = Supervisor("pilot", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    pilot = Pilot(settings, registry)
    monitoring = MonitoringServer(
        host=settings.monitoring_address, port=settings.monitoring_port, readiness=pilot.readiness,
        registry=registry, routers=(debug.router(pilot.ads, pilot.history, instance=_instance_id(),
                                                 registries=lambda: [r.contents() for r in pilot.registries]),
                                    debug_dryrun.router(pilot.ads, mesh_of=pilot.mesh_for, instance=_instance_id())),
        error_statuses=HTTP_STATUS,
    )
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    bus = await Bus.connect(BusSettings(url=settings.nats_url, connect_timeout_s=None), name="pilot")
    pilot.readiness.mark("nats-connected")
    track_connection(bus, pilot.readiness, grace_s=settings.nats_grace_s)
    try:
        await serve_grpc(supervisor, _xds_server(pilot), settings.xds_address, settings.xds_port, name="xds")
        if settings.xds_tls_port:
            _start_secure_xds(supervisor, settings, pilot, registry)
        await pilot.run(supervisor, bus)
        await supervisor.wait()
    finally:
        await bus.close()
