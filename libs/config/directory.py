"""Who is at an address, and which services a workload serves: the join telemetry (and
policy) make between what Envoy reports (addresses, hosts) and what Istio users name in
labels (workload, app, version, service).

Built from the same sources pilot reads: workloads registered in `mesh-workloads`,
WorkloadEntries, and ServiceEntries (inline endpoints, or `workloadSelector` over the
workloads of the entry's namespace).  Pure data; the services that use it keep it fresh
from their KV watches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from libs.config._resource import Resource
from libs.config.workloads import WorkloadRegistration

UNKNOWN = "unknown"
# Labels Istio reads a workload's app and version from, in order.
APP_LABELS = ("app", "app.kubernetes.io/name")
VERSION_LABELS = ("version", "app.kubernetes.io/version")


_BY_NAME = object()


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...] = ()
    service_account: str = ""
    # A sidecar fronts it: peers talk mTLS to it, and it reports.
    sidecar: bool = False

    def label(self, keys: tuple[str, ...]) -> str:
        found = dict(self.labels)
        return next((found[key] for key in keys if found.get(key)), UNKNOWN)

    @property
    def app(self) -> str:
        return self.label(APP_LABELS)

    @property
    def version(self) -> str:
        return self.label(VERSION_LABELS)

    def principal(self, trust_domain: str) -> str:
        return f"spiffe://{trust_domain}/ns/{self.namespace}/sa/{self.service_account or 'default'}"


@dataclass(frozen=True)
class ServiceName:
    host: str
    name: str
    namespace: str


@dataclass(frozen=True)
class _Entry:
    hosts: tuple[str, ...]
    namespace: str
    selector: tuple[tuple[str, str], ...] | None
    addresses: frozenset[str]
    # (number, name) of each port, and each inline endpoint's address with its port map.
    ports: tuple[tuple[int, str], ...] = ()
    endpoints: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()


@dataclass
class Directory:
    """A snapshot of the join; rebuild with `build` when a source changes."""

    by_address: dict[str, Workload] = field(default_factory=dict)
    services: dict[str, ServiceName] = field(default_factory=dict)
    _entries: list[_Entry] = field(default_factory=list)
    # Answers its users derived from this snapshot (a new snapshot starts empty).
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def workload_at(self, address: str) -> Workload | None:
        return self.by_address.get(address)

    def workload_named(self, name: str, namespace: str) -> Workload | None:
        index = self.cache.get(_BY_NAME)
        if index is None:
            index = self.cache[_BY_NAME] = {(w.name, w.namespace): w for w in self.by_address.values()}
        return index.get((name, namespace))

    def service(self, host: str) -> ServiceName | None:
        return self.services.get(host)

    def services_of(self, workload: Workload, address: str = "") -> list[str]:
        """Hosts of the services `workload` (or the endpoint at `address`) serves, sorted."""
        labels = dict(workload.labels)
        hosts: set[str] = set()
        for entry in self._entries:
            if entry.selector is not None:
                if entry.namespace == workload.namespace and all(labels.get(k) == v for k, v in entry.selector):
                    hosts.update(entry.hosts)
            elif address and address in entry.addresses:
                hosts.update(entry.hosts)
        return sorted(hosts)


    def endpoint(self, host: str, port: int) -> tuple[str, int] | None:
        """An address serving `host:port` (a ServiceEntry's inline endpoint, or a workload it
        selects), as a client in the mesh would reach it; None when the registry has none."""
        for entry in self._entries:
            if host not in entry.hosts:
                continue
            name = next((n for number, n in entry.ports if number == port), None)
            if name is None:
                continue
            for address, ports in entry.endpoints:
                return address, dict(ports).get(name, port)
            if entry.selector is not None:
                wanted = dict(entry.selector)
                for address, workload in sorted(self.by_address.items()):
                    labels = dict(workload.labels)
                    if workload.namespace == entry.namespace and all(labels.get(k) == v for k, v in wanted.items()):
                        return address, port
        return None


def service_name(host: str, namespace: str) -> ServiceName:
    """Istio's destination_service_name and _namespace: `<name>.<ns>.svc.<suffix>` names
    itself; any other host (a ServiceEntry's) is named by its host, in the entry's namespace."""
    parts = host.split(".")
    if len(parts) >= 4 and parts[2] == "svc":
        return ServiceName(host, parts[0], parts[1])
    return ServiceName(host, host, namespace)


def build(registrations: Iterable[WorkloadRegistration], resources: Iterable[Resource],
          selectors: Iterable[tuple[str, str, dict[str, str]]] = ()) -> Directory:
    """The join from registered workloads (mesh-workloads, or pods), WorkloadEntries,
    ServiceEntries, and `selectors`: (host, namespace, labels) of Kubernetes Services."""
    directory = Directory()
    for host, namespace, selector in selectors:
        directory._entries.append(_Entry((host,), namespace, tuple(sorted(selector.items())), frozenset()))
        directory.services.setdefault(host, service_name(host, namespace))
    for registration in registrations:
        directory.by_address[registration.address] = Workload(
            registration.name, registration.namespace, tuple(sorted(registration.labels.items())),
            registration.service_account, registration.sidecar)
    for resource in resources:
        spec = resource.spec
        if resource.kind == "WorkloadEntry" and spec.get("address"):
            directory.by_address.setdefault(spec["address"], Workload(
                resource.name, resource.namespace, tuple(sorted((spec.get("labels") or {}).items())),
                spec.get("serviceAccount", ""), resource.labels.get("security.istio.io/tlsMode") == "istio"))
        elif resource.kind == "ServiceEntry":
            hosts = tuple(spec.get("hosts", []))
            selector = spec.get("workloadSelector", {}).get("labels")
            endpoints = tuple((e.get("address", ""), tuple(sorted((e.get("ports") or {}).items())))
                              for e in spec.get("endpoints", []))
            ports = tuple((int(p.get("number", 0)), p.get("name", "")) for p in spec.get("ports", []))
            directory._entries.append(_Entry(hosts, resource.namespace,
                                             tuple(sorted(selector.items())) if selector is not None else None,
                                             frozenset(address for address, _ in endpoints), ports, endpoints))
            for host in hosts:
                directory.services.setdefault(host, service_name(host, resource.namespace))
    return directory
