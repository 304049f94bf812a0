"""One analysis' inputs, and the indexes every analyzer shares (built once per run).

`Inputs` is what an analysis reads: validated resources, the platform (or None when it is
unknown: analyzers that need it are skipped rather than guess), where each resource came
from, and the resources that failed validation.  `Catalog` derives from them what pilot
would: services by hostname (a Kubernetes Service wins a hostname a ServiceEntry also
defines), the workloads behind each, the mesh's root namespace and trust domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.analysis._messages import Ref
from libs.analysis._platform import DEFAULT_DOMAIN, Labels, Platform, Port, Service, Workload, labels_of
from libs.config import MESH_CONFIG_KIND, Resource, ResourceInvalid
from libs.config.validation.hosts import host_matches

MESH_GATEWAY = "mesh"


@dataclass(frozen=True)
class Inputs:
    resources: Sequence[Resource]
    platform: Platform | None = None
    # `Resource.ref` -> where it was read ("reviews.yaml[0]"); absent for live config.
    origins: Mapping[str, str] = field(default_factory=dict)
    invalid: Sequence[ResourceInvalid] = ()


@dataclass(frozen=True)
class ServiceView:
    hostname: str
    namespace: str
    ports: tuple[Port, ...]
    # "Kubernetes", or the ServiceEntry's ref.
    source: str
    members: tuple[Workload, ...] = ()
    # The labels of every endpoint: its workloads', and a ServiceEntry's inline endpoints'.
    endpoint_labels: tuple[Labels, ...] = ()
    # A ServiceEntry without endpoints or selector: its host resolves by DNS, no workload behind it.
    dns_only: bool = False


def _workload_entry(resource: Resource) -> Workload:
    spec = resource.spec
    sidecar = bool(resource.annotations.get("sidecar.istio.io/status")) or \
        resource.labels.get("security.istio.io/tlsMode") == "istio"
    return Workload(resource.name, resource.namespace, labels_of(spec.get("labels")),
                    str(spec.get("serviceAccount") or "default"), str(spec.get("address") or ""), sidecar)


class Catalog:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.platform_known = inputs.platform is not None
        self.platform = inputs.platform or Platform()
        self._by_kind: dict[str, list[Resource]] = {}
        for resource in sorted(inputs.resources, key=lambda r: (r.kind, r.namespace, r.name)):
            self._by_kind.setdefault(resource.kind, []).append(resource)
        mesh: dict[str, Any] = next((r.spec for r in self.of_kind(MESH_CONFIG_KIND)), {})
        self.root_namespace = str(mesh.get("rootNamespace") or "istio-system")
        self.trust_domain = str(mesh.get("trustDomain") or DEFAULT_DOMAIN)
        self.domain = DEFAULT_DOMAIN
        self.workloads: tuple[Workload, ...] = (
            *self.platform.workloads, *(_workload_entry(r) for r in self.of_kind("WorkloadEntry")))
        self.services = self._services()
        self.namespaces = frozenset({
            self.root_namespace, "default", *self.platform.namespaces,
            *(s.namespace for s in self.platform.services), *(w.namespace for w in self.workloads),
            *(r.namespace for r in inputs.resources)})
        self.identities = frozenset({(w.namespace, w.service_account) for w in self.workloads}
                                    | self.platform.service_accounts)

    # -- config --------------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[Resource]:
        return self._by_kind.get(kind, [])

    def ref(self, resource: Resource) -> Ref:
        return Ref(resource.kind, resource.namespace, resource.name, self.inputs.origins.get(resource.ref, ""))

    def service_ref(self, service: Service) -> Ref:
        return Ref("Service", service.namespace, service.name,
                   self.platform.origins.get(("Service", service.namespace, service.name), ""))

    def gateway(self, reference: str, namespace: str) -> Resource | None:
        """A VirtualService's `gateways:` entry: `name` (its own namespace) or `ns/name`."""
        gw_namespace, _, name = reference.rpartition("/")
        gw_namespace = gw_namespace or namespace
        return next((g for g in self.of_kind("Gateway") if (g.namespace, g.name) == (gw_namespace, name)), None)

    # -- services and workloads ------------------------------------------------------------

    def fqdn(self, host: str, namespace: str) -> str:
        """Istio's short-name rule: a host without dots is a service in `namespace`."""
        if "*" in host or "." in host:
            return host
        return f"{host}.{namespace}.svc.{self.domain}"

    def selected(self, selector: Mapping[str, str] | Labels, namespace: str | None = None) -> list[Workload]:
        """Workloads carrying every label of `selector` (in `namespace`, or anywhere)."""
        return [w for w in self.workloads if (namespace is None or w.namespace == namespace) and w.matches(selector)]

    def service(self, host: str, namespace: str) -> ServiceView | None:
        """The service `host` (as written in `namespace`) names, or one whose wildcard host covers it."""
        name = self.fqdn(host, namespace)
        found = self.services.get(name)
        if found is not None or "*" in name:
            return found
        return next((s for key, s in self.services.items() if key.startswith("*") and host_matches(key, name)), None)

    def _services(self) -> dict[str, ServiceView]:
        services: dict[str, ServiceView] = {}
        by_address = {w.address: w for w in self.workloads if w.address}
        for service in self.platform.services:
            members = [w for w in self.workloads if service.selector is not None and w.namespace == service.namespace
                       and w.matches(service.selector)]
            members += [by_address[a] for a in service.addresses if a in by_address and by_address[a] not in members]
            services[service.hostname] = ServiceView(service.hostname, service.namespace, service.ports, "Kubernetes",
                                                     tuple(members), tuple(m.labels for m in members))
        for entry in self.of_kind("ServiceEntry"):
            spec = entry.spec
            ports = tuple(Port(str(p.get("name") or ""), int(p.get("number") or 0), str(p.get("protocol") or ""),
                               target_port=str(p.get("targetPort") or ""))
                          for p in spec.get("ports") or ())
            selector = (spec.get("workloadSelector") or {}).get("labels")
            selected = tuple(self.selected(selector, entry.namespace)) if selector is not None else ()
            labels = tuple(m.labels for m in selected) + tuple(
                labels_of(e.get("labels")) for e in spec.get("endpoints") or ())
            dns_only = selector is None and not spec.get("endpoints")
            for host in spec.get("hosts") or ():
                # A Kubernetes Service wins its hostname; among entries, the first in order.
                services.setdefault(host, ServiceView(host, entry.namespace, ports, entry.ref, selected, labels,
                                                      dns_only))
        return services
