"""mesh-config and mesh-workloads followed together, for the services that join what
Envoy reports with the registry (telemetry, policy): after the initial sync of both and
on every later change, the decoded resources and a fresh `Directory`.

Readiness: `config-synced` and `workloads-synced` are marked once each bucket's initial
state is in.
"""

from __future__ import annotations

from collections.abc import Callable

from libs.bus import MESH_CONFIG, MESH_WORKLOADS, Bus, KvMirror
from libs.config._resource import Resource
from libs.config.directory import Directory, build
from libs.config.workloads import WorkloadRegistration
from libs.runtime import Readiness, Supervisor

CONFIG_SYNCED = "config-synced"
WORKLOADS_SYNCED = "workloads-synced"


class MeshView:
    def __init__(self, readiness: Readiness, on_change: Callable[[list[Resource], Directory], None]) -> None:
        self._readiness = readiness
        self._on_change = on_change
        readiness.require(CONFIG_SYNCED, WORKLOADS_SYNCED)
        self.config: KvMirror | None = None
        self.workloads: KvMirror | None = None

    @property
    def revision(self) -> int:
        """The mesh-config revision last seen."""
        return self.config.revision if self.config is not None else 0

    def _changed(self) -> None:
        if self.config is None or self.workloads is None:
            return
        if self.config.synced:
            self._readiness.mark(CONFIG_SYNCED)
        if self.workloads.synced:
            self._readiness.mark(WORKLOADS_SYNCED)
        resources = self.config.decode(Resource.from_json)
        self._on_change(resources, build(self.workloads.decode(WorkloadRegistration.from_json), resources))

    async def start(self, supervisor: Supervisor, bus: Bus) -> None:
        self.config = KvMirror(await bus.kv(MESH_CONFIG), on_change=self._changed)
        self.workloads = KvMirror(await bus.kv(MESH_WORKLOADS), on_change=self._changed)
        supervisor.start("config-watch", self.config.run)
        supervisor.start("workloads-watch", self.workloads.run)
