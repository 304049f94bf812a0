"""Galley's run(): sources -> validation -> mesh-config, supervised."""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.bus import MESH_CONFIG, Bus, BusSettings
from libs.config import LoadLimits
from libs.runtime import Backoff, MonitoringServer, Readiness, Supervisor
from services.galley.publisher import Publisher
from services.galley.settings import GalleySettings
from services.galley.sources.files import FileSource

log = structlog.get_logger(__name__)


class Galley:
    def __init__(self, settings: GalleySettings, bus: Bus, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.bus = bus
        self.readiness = Readiness()
        self.readiness.require("published")
        self._changed = asyncio.Event()
        self.files: FileSource | None = None
        if settings.config_dir is not None:
            self.files = FileSource(
                settings.config_dir,
                default_namespace=settings.default_namespace,
                limits=LoadLimits(max_bytes=settings.max_file_bytes),
                poll_interval_s=settings.poll_interval_s,
                on_change=self._changed.set,
            )
        self.resources_gauge = Gauge("galley_resources", "valid resources published", registry=registry)
        self.errors_gauge = Gauge("galley_invalid_files", "config files with errors", registry=registry)
        self.writes = Counter("galley_kv_writes", "mesh-config puts and deletes", ["op"], registry=registry)

    def desired(self) -> dict[str, object]:
        return {key: resource for key, (_, resource) in (self.files.resources() if self.files else {}).items()}

    async def publish_loop(self, publisher: Publisher) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._publish(publisher)

    async def _publish(self, publisher: Publisher) -> None:
        desired = self.files.resources() if self.files else {}
        written, deleted = await publisher.publish({key: r for key, (_, r) in desired.items()})
        self.writes.labels("put").inc(written)
        self.writes.labels("delete").inc(deleted)
        self.resources_gauge.set(len(desired))
        self.errors_gauge.set(len(self.files.errors) if self.files else 0)

    async def run(self, supervisor: Supervisor) -> None:
        bucket = await self.bus.kv(MESH_CONFIG)
        publisher = Publisher(bucket)
        await publisher.load()
        if self.files is not None:
            await asyncio.to_thread(self.files.scan)
            supervisor.start("file-source", self.files.run, restart=Backoff())
        await self._publish(publisher)
        self.readiness.mark("published")
        log.info("initial config published", revision=publisher.revision)
        supervisor.start("publish", lambda: self.publish_loop(publisher), restart=Backoff())


async def run(settings: GalleySettings) -> None:
    supervisor = Supervisor("galley", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    bus = await Bus.connect(BusSettings(url=settings.nats_url), name="galley")
    try:
        galley = Galley(settings, bus, registry)
        monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                      readiness=galley.readiness, registry=registry)
        supervisor.start("monitoring", monitoring.serve)
        supervisor.on_stop("monitoring", monitoring.stop)
        await galley.run(supervisor)
        await supervisor.wait()
    finally:
        await bus.close()
