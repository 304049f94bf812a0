"""mesh-config and the workload registries followed together, for the services that join
what Envoy reports with the registry (telemetry, policy): after the initial sync of every
source and on every later change, the decoded resources and a fresh `Directory`.

Workloads come from the local mesh's mesh-workloads (agents register there) and, with a
Kubernetes client, from the API server's Pods and Services (injected sidecars register
nowhere else); both may be on at once.

Readiness: `config-synced` once mesh-config's initial state is in, `workloads-synced` once
every workload source's is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from libs.bus import MESH_CONFIG, MESH_WORKLOADS, Bus, KvMirror
from libs.config._resource import Resource
from libs.config.directory import Directory, build
from libs.config.kube_directory import pod_registration, service_selectors
from libs.config.workloads import WorkloadRegistration
from libs.kube import KubeClient, ResourceRef, Synced, watch_resources
from libs.runtime import Backoff, Readiness, SettingsError, Supervisor

log = structlog.get_logger(__name__)

CONFIG_SYNCED = "config-synced"
WORKLOADS_SYNCED = "workloads-synced"
PODS = ResourceRef("", "v1", "pods")
SERVICES = ResourceRef("", "v1", "services")


class MeshView:
    def __init__(self, readiness: Readiness, on_change: Callable[[list[Resource], Directory], None], *,
                 mesh_workloads: bool = True, kube: KubeClient | None = None,
                 domain_suffix: str = "cluster.local") -> None:
        self._readiness = readiness
        self._on_change = on_change
        self._mesh_workloads = mesh_workloads
        self._kube = kube
        self._domain_suffix = domain_suffix
        readiness.require(CONFIG_SYNCED, WORKLOADS_SYNCED)
        self.config: KvMirror | None = None
        self.workloads: KvMirror | None = None
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {"pods": {}, "services": {}}
        self._listed: set[str] = set()

    @property
    def revision(self) -> int:
        """The mesh-config revision last seen."""
        return self.config.revision if self.config is not None else 0

    def _workloads_synced(self) -> bool:
        nats = not self._mesh_workloads or (self.workloads is not None and self.workloads.synced)
        kube = self._kube is None or self._listed == set(self._objects)
        return nats and kube

    def _changed(self) -> None:
        if self.config is None or (self._mesh_workloads and self.workloads is None):
            return
        if self.config.synced:
            self._readiness.mark(CONFIG_SYNCED)
        if self._workloads_synced():
            self._readiness.mark(WORKLOADS_SYNCED)
        resources = self.config.decode(Resource.from_json)
        registrations = self.workloads.decode(WorkloadRegistration.from_json) if self.workloads else []
        registrations += [r for pod in self._objects["pods"].values() if (r := pod_registration(pod))]
        selectors = service_selectors(self._objects["services"].values(), self._domain_suffix)
        self._on_change(resources, build(registrations, resources, selectors))

    async def start(self, supervisor: Supervisor, bus: Bus) -> None:
        self.config = KvMirror(await bus.kv(MESH_CONFIG), on_change=self._changed)
        supervisor.start("config-watch", self.config.run)
        if self._mesh_workloads:
            self.workloads = KvMirror(await bus.kv(MESH_WORKLOADS), on_change=self._changed, changes_only=True)
            supervisor.start("workloads-watch", self.workloads.run)
        if self._kube is not None:
            for store, ref in (("pods", PODS), ("services", SERVICES)):
                supervisor.start(f"kube-{store}", lambda s=store, r=ref: self._follow(s, r),  # type: ignore[misc]
                                 restart=Backoff())

    async def _follow(self, store: str, ref: ResourceRef) -> None:
        assert self._kube is not None
        objects = self._objects[store]
        async with contextlib.aclosing(watch_resources(self._kube, ref)) as events:
            async for event in events:
                if isinstance(event, Synced):
                    if store not in self._listed:
                        self._listed.add(store)
                        log.info("kubernetes objects listed", resource=store, objects=len(objects))
                    self._changed()
                    continue
                if event.type == "DELETED":
                    objects.pop(event.key, None)
                else:
                    objects[event.key] = event.object
                if self._listed == set(self._objects):
                    self._changed()


REGISTRIES = ("nats", "kubernetes")


def mesh_view(registries: tuple[str, ...], kube_config: Path | None, domain_suffix: str, readiness: Readiness,
              on_change: Callable[[list[Resource], Directory], None]) -> MeshView:
    """A view over the registries a service's `registries` setting names; SettingsError
    names an unknown one."""
    unknown = sorted(set(registries) - set(REGISTRIES))
    if unknown:
        raise SettingsError("registries", "--registries / MIZZEN_REGISTRIES",
                            f"{', '.join(unknown)} unknown; choose from {', '.join(REGISTRIES)}")
    kube = KubeClient.connect(kube_config, environ=os.environ) if "kubernetes" in registries else None
    return MeshView(readiness, on_change, mesh_workloads="nats" in registries, kube=kube,
                    domain_suffix=domain_suffix)
