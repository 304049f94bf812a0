"""Service registries, as translation sees them: services, their endpoints, and workloads.

Each registry (Kubernetes, the local mesh's `mesh-workloads`, one in memory for tests)
hands pilot a `RegistryContents` snapshot; ServiceEntries and WorkloadEntries come from
config.  The mesh config's discoverySelectors narrow a registry that knows namespaces
(`discovered`) before anything is merged.  `aggregate` merges them into the one view a
push holds, as Istio's aggregate controller does: a hostname defined by Kubernetes wins
over a ServiceEntry's, and a ServiceEntry's `workloadSelector` selects the workloads of
every registry (WorkloadEntries, registered workloads, pods).  Pure: contents in, merged
maps out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from libs.config import Resource
from libs.config.label_selectors import LabelSelector
from libs.runtime import Supervisor
from services.pilot.model import serviceentry
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.model.services import Endpoint, Service

KUBERNETES = "Kubernetes"
SERVICE_ENTRIES = "ServiceEntry"
# Who wins a hostname several registries define: Kubernetes first, as in Istio.
_PRECEDENCE = {KUBERNETES: 0, SERVICE_ENTRIES: 1}

Endpoints = Mapping[tuple[str, int], tuple[Endpoint, ...]]


@dataclass(frozen=True)
class RegistryContents:
    """One registry's view at one moment."""

    name: str
    services: Mapping[str, Service] = field(default_factory=dict)
    # By (hostname, service port).
    endpoints: Endpoints = field(default_factory=dict)
    # What a ServiceEntry's workloadSelector may select, and whom an address belongs to.
    workloads: tuple[WorkloadInstance, ...] = ()
    # Changes whenever the contents do (a digest or a resourceVersion), "" when empty.
    version: str = ""
    # Each namespace's labels, for registries that know namespaces (Kubernetes): what the
    # mesh config's discoverySelectors choose by.  None: not filtered.
    namespaces: Mapping[str, Mapping[str, str]] | None = None


def discovered(contents: RegistryContents, selectors: Sequence[LabelSelector]) -> RegistryContents:
    """`contents` without the services, endpoints and workloads of namespaces no selector
    matches (Istio's discoverySelectors: ORed; a namespace the registry has not seen has no
    labels)."""
    if not selectors or contents.namespaces is None:
        return contents
    labels = contents.namespaces
    chosen = {ns for ns in {s.namespace for s in contents.services.values()} | {w.namespace for w in contents.workloads}
              if any(selector.matches(labels.get(ns, {})) for selector in selectors)}
    services = {host: s for host, s in contents.services.items() if s.namespace in chosen}
    return replace(contents, services=services,
                   endpoints={key: found for key, found in contents.endpoints.items() if key[0] in services},
                   workloads=tuple(w for w in contents.workloads if w.namespace in chosen))


class ServiceRegistry(Protocol):
    """What pilot asks of a running registry."""

    @property
    def name(self) -> str: ...

    @property
    def synced(self) -> bool:
        """Whether its initial state is in: pilot serves no proxy before every registry is."""

    def contents(self) -> RegistryContents: ...

    def start(self, supervisor: Supervisor) -> None:
        """Start following its source, under the service's supervisor."""


@dataclass
class MemoryRegistry:
    """A registry whose contents are set by hand (tests, and registries that are only data)."""

    name: str = "memory"
    services: dict[str, Service] = field(default_factory=dict)
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = field(default_factory=dict)
    workloads: list[WorkloadInstance] = field(default_factory=list)
    synced: bool = True

    def start(self, supervisor: Supervisor) -> None:
        pass  # nothing to follow: its contents are set by hand

    def contents(self) -> RegistryContents:
        digest = str(hash((tuple(sorted(self.services.items())), tuple(sorted(self.endpoints.items())),
                           tuple(self.workloads)))) if (self.services or self.endpoints or self.workloads) else ""
        return RegistryContents(self.name, dict(self.services), dict(self.endpoints), tuple(self.workloads), digest)


@dataclass(frozen=True)
class Aggregate:
    services: dict[str, Service]
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]]
    workloads: tuple[WorkloadInstance, ...]
    version: str
    # What the ServiceEntries came to, for the next aggregate to start from.
    entry_services: serviceentry.EntryServices


def aggregate(entries: Iterable[Resource], workload_entries: Iterable[Resource],
              registries: Sequence[RegistryContents],
              previous: serviceentry.EntryServices | None = None) -> Aggregate:
    """ServiceEntries (selecting the workloads of every registry) and each registry's
    services, merged by hostname; each service keeps the endpoints of the registry that
    defined it.  `previous`: the last aggregate's `entry_services`, which the entries'
    part is worked out from when only some workloads changed."""
    workloads = [serviceentry.workload_from_entry(r) for r in workload_entries]
    for registry in registries:
        workloads.extend(registry.workloads)
    entry_part = serviceentry.build(entries, workloads, previous)
    ordered = sorted([*registries, RegistryContents(SERVICE_ENTRIES, entry_part.services, entry_part.endpoints)],
                     key=lambda r: _PRECEDENCE.get(r.name, len(_PRECEDENCE)))
    services: dict[str, Service] = {}
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    for registry in ordered:
        for host, service in registry.services.items():
            if host in services:
                continue
            services[host] = service
            for port in service.ports:
                endpoints[(host, port.number)] = registry.endpoints.get((host, port.number), ())
    version = ".".join(f"{r.version}" for r in registries if r.version)
    return Aggregate(services, endpoints, entry_part.workloads, version, entry_part)
