"""What a VirtualService names must exist: destination hosts (and their ports), subsets
in a DestinationRule, gateways, and its hosts on those gateways (istio/istio
`analyzers/virtualservice/{destinationhosts,destinationrules,gateways}.go`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import MESH_GATEWAY, Catalog
from libs.analysis._messages import (
    Message,
    ReferencedResourceNotFound,
    VirtualServiceHostNotFoundInGateway,
    go_list,
    quoted,
)
from libs.config import Resource
from libs.config.validation.hosts import host_matches, host_subset_of


@dataclass(frozen=True)
class Destination:
    host: str
    subset: str
    port: int
    mirror: bool


def destinations(spec: dict[str, Any]) -> Iterator[Destination]:
    """Every route destination (http, tcp, tls) and every HTTP mirror of a VirtualService."""
    def of(body: Any, mirror: bool) -> Destination:
        body = body if isinstance(body, dict) else {}
        return Destination(str(body.get("host") or ""), str(body.get("subset") or ""),
                           int((body.get("port") or {}).get("number") or 0), mirror)

    for section in ("http", "tcp", "tls"):
        for rule in spec.get(section) or ():
            for route in rule.get("route") or ():
                yield of(route.get("destination"), False)
            if section == "http":
                if rule.get("mirror"):
                    yield of(rule["mirror"], True)
                for mirror in rule.get("mirrors") or ():
                    yield of(mirror.get("destination"), True)


def _hosts(catalog: Catalog) -> Iterator[Message]:
    for vs in catalog.of_kind("VirtualService"):
        for dest in destinations(vs.spec):
            if not dest.host:
                continue
            service = catalog.service(dest.host, vs.namespace)
            if service is None:
                what = "mirror host" if dest.mirror else "host"
                yield Message(ReferencedResourceNotFound, catalog.ref(vs), (what, quoted(dest.host)))
            elif dest.port and service.ports and all(p.number != dest.port for p in service.ports):
                yield Message(ReferencedResourceNotFound, catalog.ref(vs),
                              ("host:port", quoted(f"{dest.host}:{dest.port}")))


def _subsets(catalog: Catalog) -> Iterator[Message]:
    # Subset name -> the hosts of the DestinationRules defining it.
    defined: dict[str, list[str]] = {}
    for rule in catalog.of_kind("DestinationRule"):
        host = catalog.fqdn(str(rule.spec.get("host") or ""), rule.namespace)
        for subset in rule.spec.get("subsets") or ():
            defined.setdefault(str(subset.get("name")), []).append(host)
    for vs in catalog.of_kind("VirtualService"):
        for dest in destinations(vs.spec):
            host = catalog.fqdn(dest.host, vs.namespace)
            if dest.subset and not any(host_subset_of(host, of) for of in defined.get(dest.subset, ())):
                yield Message(ReferencedResourceNotFound, catalog.ref(vs),
                              ("host+subset in destinationrule", quoted(f"{dest.host}+{dest.subset}")))


def _gateway_hosts(gateway: Resource, vs_namespace: str) -> list[str]:
    """The gateway's server hosts a VirtualService in `vs_namespace` may bind to."""
    found: list[str] = []
    for server in gateway.spec.get("servers") or ():
        for host in server.get("hosts") or ():
            namespace, _, name = str(host).rpartition("/")
            if namespace in ("", "*", vs_namespace) or (namespace == "." and gateway.namespace == vs_namespace):
                found.append(name)
    return found


def _gateways(catalog: Catalog) -> Iterator[Message]:
    for vs in catalog.of_kind("VirtualService"):
        hosts = [str(h) for h in vs.spec.get("hosts") or ()]
        for reference in vs.spec.get("gateways") or ():
            if reference == MESH_GATEWAY:
                continue
            gateway = catalog.gateway(reference, vs.namespace)
            if gateway is None:
                yield Message(ReferencedResourceNotFound, catalog.ref(vs), ("gateway", quoted(reference)))
                continue
            served = _gateway_hosts(gateway, vs.namespace)
            if hosts and not any(host_matches(g, h) for g in served for h in hosts):
                yield Message(VirtualServiceHostNotFoundInGateway, catalog.ref(vs),
                              (go_list(hosts), f"{vs.namespace}/{vs.name}", f"{gateway.namespace}/{gateway.name}"))


DESTINATION_HOSTS = Analyzer(
    "virtualservice.DestinationHostAnalyzer", "Checks the destination hosts associated with each virtual service",
    _hosts, ("VirtualService", "ServiceEntry", "WorkloadEntry"), needs_platform=True)
DESTINATION_RULES = Analyzer(
    "virtualservice.DestinationRuleAnalyzer", "Checks the destination rules associated with each virtual service",
    _subsets, ("VirtualService", "DestinationRule"))
GATEWAYS = Analyzer(
    "virtualservice.GatewayAnalyzer", "Checks the gateways associated with each virtual service",
    _gateways, ("VirtualService", "Gateway"))
