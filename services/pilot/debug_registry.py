"""`/debug/platformz`: the services and workloads of pilot's current push, with what
`mizzenctl analyze` needs to check config against them (port names, target ports and
`appProtocol`, endpoint addresses; workload labels and service accounts).  Read-only.

Each entry says where it came from (`source`): a service its registry (`Kubernetes
Service ns/name`) or ServiceEntry, a workload `WorkloadEntry` or `registry` (a pod, a
workload an agent registered), so a client analysing changed config can tell what that
config defined from what the platform holds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.pilot.model.push_context import PushContext
from services.pilot.model.serviceentry import WorkloadInstance, workload_from_entry
from services.pilot.model.services import Service
from services.pilot.xds.server import AdsServer


def _service(push: PushContext, service: Service) -> dict[str, Any]:
    return {
        "hostname": service.hostname,
        "namespace": service.namespace,
        "source": service.source,
        "meshExternal": service.mesh_external,
        "ports": [{"name": p.name, "port": p.number, "protocol": p.protocol.value,
                   "targetPort": p.target_port or None, "appProtocol": p.app_protocol or None}
                  for p in service.ports],
        "endpoints": {str(p.number): [f"{e.address}:{e.port}" for e in push.endpoints.get((service.hostname, p.number),
                                                                                         ())]
                      for p in service.ports},
    }


def _workload(workload: WorkloadInstance, entries: list[WorkloadInstance]) -> dict[str, Any]:
    return {
        "name": workload.name,
        "namespace": workload.namespace,
        "address": workload.address,
        "labels": dict(workload.labels),
        "serviceAccount": workload.service_account,
        "ports": dict(workload.ports),
        "sidecar": workload.sidecar,
        "source": "WorkloadEntry" if workload in entries else "registry",
    }


def platformz(push: PushContext | None) -> dict[str, Any]:
    if push is None:
        return {"version": None, "services": [], "workloads": []}
    entries = [workload_from_entry(r) for r in push.config.of_kind("WorkloadEntry")]
    return {
        "version": push.version,
        "services": [_service(push, s) for s in sorted(push.services.values(), key=lambda s: s.hostname)],
        "workloads": [_workload(w, entries) for w in sorted(push.workloads, key=lambda w: (w.namespace, w.name))],
    }


def router(server: AdsServer) -> APIRouter:
    api = APIRouter()

    @api.get("/platformz")
    async def platform() -> dict[str, Any]:
        return platformz(server.cache.push_context)

    return api
