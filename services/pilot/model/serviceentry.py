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


# More changed workloads than this and a push selects every entry's anew: finding what each
# selects costs more than the lookups the full build does.
RESELECT_AT_MOST = 32


@dataclass(frozen=True)
class EntryServices:
    """What a list of ServiceEntries defines over some workloads: services by hostname,
    endpoints by (hostname, service port).  Kept by the push, so that the next one, with the
    same entries, selects anew only for the entries whose selectors a changed workload
    matches: an endpoint change then costs its own entries, not a thousand."""

    entries: tuple[Resource, ...]
    workloads: tuple[WorkloadInstance, ...]
    services: dict[str, Service]
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]]
    # By namespace: each entry's workloadSelector and the hosts it defines.
    selectors: dict[str, list[tuple[dict[str, str], tuple[str, ...]]]]


def build(entries: Iterable[Resource], workloads: Iterable[WorkloadInstance],
          previous: EntryServices | None = None) -> EntryServices:
    """The entries' services and endpoints; from `previous` where the entries are the same
    objects and few workloads changed (the result is the same either way)."""
    entries, workloads = tuple(entries), tuple(workloads)
    if previous is not None and len(previous.entries) == len(entries) and \
            all(a is b for a, b in zip(previous.entries, entries, strict=True)):
        changed = _changed(previous.workloads, workloads)
        if len(changed) <= RESELECT_AT_MOST:
            return _reselected(previous, workloads, changed)
    return _built(entries, workloads)


def _built(entries: tuple[Resource, ...], workloads: tuple[WorkloadInstance, ...]) -> EntryServices:
    services: dict[str, Service] = {}
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    selectors: dict[str, list[tuple[dict[str, str], tuple[str, ...]]]] = {}
    index = _WorkloadIndex(workloads)
    for resource in entries:
        spec = resource.spec
        ports = _ports(spec)
        resolution = Resolution(spec.get("resolution", "NONE")) if spec.get("resolution") != "DYNAMIC_DNS" \
            else Resolution.DNS
        selector = spec.get("workloadSelector", {}).get("labels")
        selected = index.select(resource.namespace, selector) if selector is not None else []
        defined: list[str] = []
        for host in spec.get("hosts", []):
            if host in services:
                # Istio: the oldest entry wins; ours is the first in (namespace, name) order.
                continue
            defined.append(host)
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
            if selector is not None:
                endpoints.update(_selected_endpoints(host, ports, selected))
                continue
            for port in ports:
                found: list[Endpoint] = []
                for entry in spec.get("endpoints", []):
                    target = entry.get("ports", {}).get(port.name) or port.target_port or port.number
                    found.append(_endpoint(entry["address"], target, entry))
                endpoints[(host, port.number)] = tuple(found)
        if selector is not None and defined:
            selectors.setdefault(resource.namespace, []).append((selector, tuple(defined)))
    return EntryServices(entries, workloads, services, endpoints, selectors)


def _selected_endpoints(host: str, ports: Iterable[ServicePort], selected: list[WorkloadInstance],
                        ) -> dict[tuple[str, int], tuple[Endpoint, ...]]:
    found: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    for port in ports:
        found[(host, port.number)] = tuple(
            _endpoint(w.address, dict(w.ports).get(port.name) or port.target_port or port.number, w)
            for w in selected)
    return found


def _changed(old: tuple[WorkloadInstance, ...], new: tuple[WorkloadInstance, ...]) -> list[WorkloadInstance]:
    """Workloads in one and not the other.  Registries hand over the same objects while a
    workload is unchanged, so identity settles almost all; what is left (WorkloadEntries,
    read from config anew each push) is compared by value."""
    old_ids, new_ids = {id(w) for w in old}, {id(w) for w in new}
    gone = [w for w in old if id(w) not in new_ids]
    came = [w for w in new if id(w) not in old_ids]
    if gone and came:
        alike = set(gone) & set(came)
        gone = [w for w in gone if w not in alike]
        came = [w for w in came if w not in alike]
    return gone + came


def _reselected(previous: EntryServices, workloads: tuple[WorkloadInstance, ...],
                changed: list[WorkloadInstance]) -> EntryServices:
    """`previous` over `workloads`: the entries a changed workload (as it was, or as it is)
    matches select again; every other entry keeps its endpoints, the very tuples."""
    endpoints = previous.endpoints
    for namespace in {w.namespace for w in changed}:
        index: _WorkloadIndex | None = None
        for selector, hosts in previous.selectors.get(namespace, ()):
            if not any(w.namespace == namespace and (not selector or w.matches(selector)) for w in changed):
                continue
            if index is None:
                index = _WorkloadIndex(w for w in workloads if w.namespace == namespace)
            if endpoints is previous.endpoints:
                endpoints = dict(endpoints)
            selected = index.select(namespace, selector)
            for host in hosts:
                endpoints.update(_selected_endpoints(host, previous.services[host].ports, selected))
    return EntryServices(previous.entries, workloads, previous.services, endpoints, previous.selectors)
