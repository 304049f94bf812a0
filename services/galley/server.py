"""Galley's run(): sources -> validation -> mesh-config, written only by the lease holder."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.bus import MESH_CONFIG, Bus, BusSettings, KvBucket, track_connection
from libs.config import LoadLimits
from libs.kube import KubeClient, WatchSettings
from libs.runtime import Backoff, FatalServiceError, MonitoringServer, Readiness, SettingsError, Supervisor
from services.galley import api, webhook_server
from services.galley.analysis import AUTO, NONE, PLATFORMS, WORKLOADS, ApplyAnalysis
from services.galley.leader import Lease
from services.galley.publisher import Publisher
from services.galley.settings import GalleySettings
from services.galley.sources import Source, merge
from services.galley.sources.applied import MESH_CONFIG_APPLIED, AppliedSource
from services.galley.sources.files import FileSource
from services.galley.sources.kubernetes import KubernetesSource

log = structlog.get_logger(__name__)

GALLEY_LEASE = "galley-lease"


class Galley:
    def __init__(self, settings: GalleySettings, registry: CollectorRegistry,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.readiness = Readiness()
        self.readiness.require("nats-connected", "sources-synced")
        self._changed = asyncio.Event()
        self.sources: list[Source] = []
        self.files: FileSource | None = None
        if settings.config_dir is not None:
            self.files = FileSource(
                settings.config_dir,
                default_namespace=settings.default_namespace,
                limits=LoadLimits(max_bytes=settings.max_file_bytes),
                poll_interval_s=settings.poll_interval_s,
                on_change=self._changed.set,
            )
        self.kube: KubeClient | None = None
        self.kubernetes: KubernetesSource | None = None
        if settings.kubeconfig is not None or settings.kube_in_cluster:
            self.kube = KubeClient.connect(settings.kubeconfig, environ=environ or {}, context=settings.kube_context,
                                           request_timeout_s=settings.kube_request_timeout_s)
            self.kubernetes = KubernetesSource(
                self.kube, namespaces=settings.watch_namespaces,
                settings=WatchSettings(watch_timeout_s=settings.kube_watch_timeout_s),
                rediscover_interval_s=settings.kube_rediscover_interval_s, on_change=self._changed.set,
                mesh_namespace=settings.mesh_namespace,
            )
        self.applied: AppliedSource | None = None
        self.lease: Lease | None = None
        self.resources_gauge = Gauge("galley_resources", "valid resources published", registry=registry)
        self.errors_gauge = Gauge("galley_invalid_files", "config files with errors", registry=registry)
        self.leader_gauge = Gauge("galley_leader", "1 while this replica holds the write lease", registry=registry)
        self.writes = Counter("galley_kv_writes", "mesh-config puts and deletes", ["op"], registry=registry)

    async def _publish(self, publisher: Publisher) -> None:
        desired = merge(self.sources)
        written, deleted = await publisher.publish({key: r for key, (_, r) in desired.items()})
        self.writes.labels("put").inc(written)
        self.writes.labels("delete").inc(deleted)
        self.resources_gauge.set(len(desired))
        self.errors_gauge.set((len(self.files.errors) if self.files else 0)
                              + (len(self.kubernetes.errors) if self.kubernetes else 0))

    async def publish_loop(self, bucket: KvBucket) -> None:
        """While leader, make mesh-config equal to the merged sources after every change."""
        publisher = Publisher(bucket)
        loaded = False
        while True:
            if self.lease is not None and self.lease.leader:
                if not loaded:
                    # A new leader learns what the bucket holds and corrects it: no stale
                    # key survives, nothing is written twice.
                    await publisher.load()
                    loaded = True
                await self._publish(publisher)
                log.info("mesh-config in sync", revision=publisher.revision)
            else:
                loaded = False
            await self._changed.wait()
            self._changed.clear()

    async def _elected(self) -> None:
        self.leader_gauge.set(1)
        self._changed.set()

    async def _lost(self) -> None:
        self.leader_gauge.set(0)

    async def run(self, supervisor: Supervisor, bus: Bus) -> None:
        bucket = await bus.kv(MESH_CONFIG)
        self.applied = AppliedSource(await bus.kv(MESH_CONFIG_APPLIED), on_change=self._changed.set)
        # Every bucket is open before galley reports ready: from then on a NATS outage is
        # waited out by the supervised tasks, where a bucket opened later would end galley.
        lease_bucket = await bus.kv(GALLEY_LEASE)
        # Earlier sources win a key held by several: what an operator applied overrides files.
        self.sources.append(self.applied)
        supervisor.start("api-source", self.applied.run, restart=Backoff())
        if self.kubernetes is not None:
            self.sources.append(self.kubernetes)
            supervisor.start("kubernetes-source", self.kubernetes.run, restart=Backoff())
        if self.files is not None:
            self.sources.append(self.files)
            await asyncio.to_thread(self.files.scan)
            supervisor.start("file-source", self.files.run, restart=Backoff())
        while not all(source.synced for source in self.sources):
            await self._changed.wait()
            self._changed.clear()
        self.readiness.mark("sources-synced")
        holder = self.settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"
        self.lease = Lease(lease_bucket, holder, ttl_s=self.settings.lease_ttl_s, renew_s=self.settings.lease_renew_s)
        supervisor.start("lease", lambda: self.lease.run(self._elected, self._lost),  # type: ignore[union-attr]
                         restart=Backoff())
        supervisor.on_stop("lease", self.lease.release)
        supervisor.start("publish", lambda: self.publish_loop(bucket), restart=Backoff())


def _analysis_platform(settings: GalleySettings) -> str:
    if settings.analysis_platform not in PLATFORMS:
        raise SettingsError("analysis_platform", "--analysis-platform / MIZZEN_ANALYSIS_PLATFORM",
                            f"{settings.analysis_platform!r} unknown; choose from {', '.join(PLATFORMS)}")
    if settings.analysis_platform == AUTO:
        watching_kubernetes = settings.kubeconfig is not None or settings.kube_in_cluster
        return NONE if watching_kubernetes else WORKLOADS
    return settings.analysis_platform


def _token(settings: GalleySettings) -> str | None:
    if settings.api_token_file is None:
        return None
    return settings.api_token_file.read_text().strip() or None


async def run(settings: GalleySettings, environ: Mapping[str, str] | None = None) -> None:
    analysis_platform = _analysis_platform(settings)
    supervisor = Supervisor("galley", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    galley = Galley(settings, registry, os.environ if environ is None else environ)
    monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                  readiness=galley.readiness, registry=registry)
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    try:
        # Validation needs neither NATS nor the sources: the webhook serves from the start,
        # and /readyz waits for it.
        webhook_server.check(settings)
        webhook_server.start(supervisor, settings, galley.readiness, registry)
    except SettingsError as exc:
        await supervisor.shutdown()
        raise FatalServiceError("webhook", exc) from exc
    bus = await Bus.connect(BusSettings(url=settings.nats_url, connect_timeout_s=None), name="galley")
    galley.readiness.mark("nats-connected")
    track_connection(bus, galley.readiness, grace_s=settings.nats_grace_s)
    try:
        await galley.run(supervisor, bus)
        assert galley.applied is not None
        if settings.api_port:
            server = MonitoringServer(
                host=settings.api_address, port=settings.api_port, readiness=galley.readiness, registry=registry,
                routers=(api.router(galley.applied, galley.sources, token=_token(settings),
                                    default_namespace=settings.default_namespace,
                                    analysis=ApplyAnalysis(bus, galley.sources, platform=analysis_platform),
                                    store_connected=lambda: bus.connected),),
                error_statuses=api.HTTP_STATUS,
            )
            supervisor.start("api", server.serve)
            supervisor.on_stop("api", server.stop)
        await supervisor.wait()
    finally:
        await bus.close()
        if galley.kube is not None:
            galley.kube.close()
