"""The ServiceEntry registry: services and endpoints declared in config.

Endpoints come from the entry's inline `endpoints`, or, with a `workloadSelector`,
from every WorkloadEntry and registered workload in the entry's namespace whose labels
match (how Istio brings VMs, and Mizzen brings local-mesh workloads, into the mesh).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from libs.config import Resource
from services.pilot.model.services import Endpoint, Resolution, Service, ServicePort, detect_protocol


@dataclass(frozen=True)
class WorkloadInstance:
    """A workload that a ServiceEntry can select: a WorkloadEntry or a registered workload."""

    name: str
    namespace: str
    address: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, int], ...] = ()
    service_account: str = ""
    locality: str = ""
    weight: int = 1
    network: str = ""
    # True when a sidecar fronts the workload, so peers may use mTLS.
    sidecar: bool = False

    def matches(self, selector: dict[str, str]) -> bool:
        labels = dict(self.labels)
        return all(labels.get(key) == value for key, value in selector.items())


def workload_from_entry(resource: Resource) -> WorkloadInstance:
    spec = resource.spec
    return WorkloadInstance(
        name=resource.name,
        namespace=resource.namespace,
        address=spec.get("address", ""),
        labels=tuple(sorted(spec.get("labels", {}).items())),
        ports=tuple(sorted(spec.get("ports", {}).items())),
        service_account=spec.get("serviceAccount", ""),
        locality=spec.get("locality", ""),
        weight=spec.get("weight", 1) or 1,
        network=spec.get("network", ""),
        sidecar=resource.annotations.get("sidecar.istio.io/status", "") != ""
        or resource.labels.get("security.istio.io/tlsMode") == "istio",
    )


def _ports(spec: dict[str, Any]) -> tuple[ServicePort, ...]:
    return tuple(
        ServicePort(
            name=port.get("name", ""),
            number=port["number"],
            protocol=detect_protocol(port.get("name", ""), port.get("protocol", "")),
            target_port=port.get("targetPort", 0),
        )
        for port in spec.get("ports", [])
    )


def _endpoint(address: str, target: int, entry: dict[str, Any] | WorkloadInstance) -> Endpoint:
    if isinstance(entry, WorkloadInstance):
        return Endpoint(
            address=address, port=target, labels=entry.labels, locality=entry.locality, weight=entry.weight,
            service_account=entry.service_account, network=entry.network,
            tls_mode="istio" if entry.sidecar else "", workload=entry.name,
        )
    return Endpoint(
        address=address,
        port=target,
        labels=tuple(sorted(entry.get("labels", {}).items())),
        locality=entry.get("locality", ""),
        weight=entry.get("weight", 1) or 1,
        service_account=entry.get("serviceAccount", ""),
        network=entry.get("network", ""),
    )


class _WorkloadIndex:
    """Workloads by namespace and by each label, so a thousand selectors over three
    thousand workloads cost a lookup each, not a scan."""

    def __init__(self, workloads: Iterable[WorkloadInstance]) -> None:
        self._by_namespace: dict[str, list[WorkloadInstance]] = {}
        self._by_label: dict[tuple[str, str, str], list[WorkloadInstance]] = {}
        for workload in workloads:
            self._by_namespace.setdefault(workload.namespace, []).append(workload)
            for key, value in workload.labels:
                self._by_label.setdefault((workload.namespace, key, value), []).append(workload)

    def select(self, namespace: str, selector: dict[str, str]) -> list[WorkloadInstance]:
        """The namespace's workloads matching every label of `selector`, in registration order."""
        if not selector:
            return list(self._by_namespace.get(namespace, ()))
        key, value = next(iter(selector.items()))
        return [w for w in self._by_label.get((namespace, key, str(value)), ()) if w.matches(selector)]


def build(
    entries: Iterable[Resource], workloads: Iterable[WorkloadInstance]
) -> tuple[dict[str, Service], dict[tuple[str, int], tuple[Endpoint, ...]]]:
    """Services by hostname and endpoints by (hostname, service port)."""
    services: dict[str, Service] = {}
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    index = _WorkloadIndex(workloads)
    for resource in entries:
        spec = resource.spec
        ports = _ports(spec)
        resolution = Resolution(spec.get("resolution", "NONE")) if spec.get("resolution") != "DYNAMIC_DNS" \
            else Resolution.DNS
        selector = spec.get("workloadSelector", {}).get("labels")
        for host in spec.get("hosts", []):
            if host in services:
                # Istio: the oldest entry wins; ours is the first in (namespace, name) order.
                continue
            services[host] = Service(
                hostname=host,
                namespace=resource.namespace,
                ports=ports,
                resolution=resolution,
                addresses=tuple(spec.get("addresses", [])),
                mesh_external=spec.get("location", "MESH_EXTERNAL") != "MESH_INTERNAL",
                export_to=tuple(spec.get("exportTo", [])),
                source=resource.ref,
            )
            selected = index.select(resource.namespace, selector) if selector is not None else []
            for port in ports:
                found: list[Endpoint] = []
                if selector is not None:
                    for workload in selected:
                        target = dict(workload.ports).get(port.name) or port.target_port or port.number
                        found.append(_endpoint(workload.address, target, workload))
                else:
                    for entry in spec.get("endpoints", []):
                        target = entry.get("ports", {}).get(port.name) or port.target_port or port.number
                        found.append(_endpoint(entry["address"], target, entry))
                endpoints[(host, port.number)] = tuple(found)
    return services, endpoints
