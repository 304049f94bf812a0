"""PushContext: one immutable snapshot of everything translation needs.

Built once per (debounced) change, shared by every proxy's translation; its `version`
is what Envoy sees as `version_info`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from libs.config import Resource
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig, resolve_host
from services.pilot.model.registry import RegistryContents, aggregate, discovered
from services.pilot.model.serviceentry import EntryServices, WorkloadInstance
from services.pilot.model.services import Endpoint, Service, ServicePort


def make_version(config_revision: int, registry_version: str) -> str:
    """The KV revision of the config, and the registry's version when workloads are registered."""
    return str(config_revision) if not registry_version else f"{config_revision}.{registry_version}"


T = TypeVar("T")


@dataclass(frozen=True)
class PushContext:
    version: str
    config: ConfigSnapshot
    mesh: MeshConfig
    services: Mapping[str, Service]
    endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]]
    workloads: tuple[WorkloadInstance, ...] = ()
    # The registries' contents this push was built from, so the same push can be rebuilt
    # with other config (`with_config`: a dry run's "what if").
    registries: tuple[RegistryContents, ...] = field(default=(), compare=False, repr=False)
    # What the ServiceEntries came to, for the next push to start from (see `build`).
    entry_services: EntryServices | None = field(default=None, compare=False, repr=False)
    _gateways: dict[str, Resource] = field(init=False, repr=False, compare=False)
    _destination_rules: dict[str, Resource] = field(init=False, repr=False, compare=False)
    _source_selectors: tuple[tuple[tuple[str, str], ...], ...] = field(init=False, repr=False, compare=False)
    # Facts derived from this push that many proxies ask for (see `derived`).
    _derived: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gateways = {f"{g.namespace}/{g.name}": g for g in self.config.of_kind("Gateway")}
        rules: dict[str, Resource] = {}
        for rule in self.config.of_kind("DestinationRule"):
            host = resolve_host(rule.spec.get("host", ""), rule.namespace, self.mesh)
            # Istio prefers the rule in the client's namespace; without exportTo scoping the
            # first in (namespace, name) order wins.
            rules.setdefault(host, rule)
        object.__setattr__(self, "_gateways", gateways)
        object.__setattr__(self, "_source_selectors", _source_selectors(self.config.of_kind("VirtualService")))
        object.__setattr__(self, "_destination_rules", rules)

    @classmethod
    def build(
        cls,
        config: ConfigSnapshot,
        mesh: MeshConfig,
        *,
        registries: Sequence[RegistryContents] = (),
        workloads: Iterable[WorkloadInstance] = (),
        previous: PushContext | None = None,
    ) -> PushContext:
        """The push for `config` and the registries' contents (`workloads`: registered
        workloads outside any registry, for tests).  `previous`, the push this one follows:
        what its ServiceEntries came to is reused where the entries are the same, so an
        endpoint change selects workloads for its own entries only, and keeps every other
        service and endpoint as the very objects the last push held."""
        extra = [RegistryContents("workloads", workloads=tuple(workloads))] if workloads else []
        contents = (*registries, *extra)
        merged = aggregate(config.of_kind("ServiceEntry"), config.of_kind("WorkloadEntry"),
                           [discovered(c, mesh.discovery_selectors) for c in contents],
                           previous.entry_services if previous is not None else None)
        return cls(
            version=make_version(config.revision, merged.version),
            config=config,
            mesh=mesh,
            services=merged.services,
            endpoints=merged.endpoints,
            workloads=merged.workloads,
            registries=contents,
            entry_services=merged.entry_services,
        )

    def with_config(self, config: ConfigSnapshot, mesh: MeshConfig) -> PushContext:
        """The push `config` and `mesh` would make with this push's registry contents: a new,
        independent push (its own derived facts), this one untouched."""
        return PushContext.build(config, mesh, registries=self.registries)

    def gateway(self, reference: str, namespace: str) -> Resource | None:
        """A VirtualService's `gateways:` entry: `name` (same namespace) or `ns/name`."""
        key = reference if "/" in reference else f"{namespace}/{reference}"
        return self._gateways.get(key)

    def gateways(self) -> list[Resource]:
        return list(self._gateways.values())

    def destination_rule(self, hostname: str) -> Resource | None:
        return self._destination_rules.get(hostname)

    def virtual_services(self) -> list[Resource]:
        return self.config.of_kind("VirtualService")

    def source_selectors(self) -> tuple[tuple[tuple[str, str], ...], ...]:
        """Every distinct `sourceLabels` of a VirtualService match: the only way a sidecar's
        labels reach its outbound routes, so proxies matching the same ones share them."""
        return self._source_selectors

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()`, computed once per push for `key`: the push is immutable, so what a
        thousand proxies in one namespace each derive from it is derived once."""
        if key not in self._derived:
            self._derived[key] = build()
        return cast(T, self._derived[key])

    def endpoints_at(self, address: str) -> list[tuple[Service, ServicePort, Endpoint]]:
        """Every (service, port, endpoint) whose endpoint has this address, by hostname:
        indexed once per push, since each of a thousand sidecars asks for its own."""
        return self.derived("endpoints-by-address", self._index_addresses).get(address, [])

    def _index_addresses(self) -> dict[str, list[tuple[Service, ServicePort, Endpoint]]]:
        index: dict[str, list[tuple[Service, ServicePort, Endpoint]]] = {}
        for service in sorted(self.services.values(), key=lambda s: s.hostname):
            for port in service.ports:
                for endpoint in self.endpoints.get((service.hostname, port.number), ()):
                    index.setdefault(endpoint.address, []).append((service, port, endpoint))
        return index

    def service(self, host: str, namespace: str) -> Service | None:
        return self.services.get(resolve_host(host, namespace, self.mesh))


def _source_selectors(virtual_services: Iterable[Resource]) -> tuple[tuple[tuple[str, str], ...], ...]:
    found: set[tuple[tuple[str, str], ...]] = set()
    for vs in virtual_services:
        for section in ("http", "tcp", "tls"):
            for rule in vs.spec.get(section) or ():
                for match in rule.get("match") or ():
                    labels = match.get("sourceLabels")
                    if isinstance(labels, dict) and labels:
                        found.add(tuple(sorted((str(k), str(v)) for k, v in labels.items())))
    return tuple(sorted(found))
