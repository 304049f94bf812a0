"""Gateways: their selector must select a workload, their ports must be reachable on it,
and no two may claim the same hosts on the same port of the same workloads (istio/istio
`analyzers/gateway/{gateway,conflictinggateway}.go`).

Mizzen's gateways listen on the server's port number itself (Istio maps a Service port to
its targetPort; Mizzen does not), so IST0104 checks a server port against the target ports
of the Services in front of the gateway's workloads.  A gateway no Service fronts (the
local mesh's ingress, reached on its own address) has nothing to check against.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog
from libs.analysis._messages import (
    ConflictingGateways,
    GatewayPortNotOnWorkload,
    Message,
    ReferencedResourceNotFound,
    quoted,
)
from libs.analysis._platform import selector_text
from libs.config.validation.hosts import host_matches


def _selector(gateway_spec: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (gateway_spec.get("selector") or {}).items()}


def _ports(catalog: Catalog) -> Iterator[Message]:
    for gateway in catalog.of_kind("Gateway"):
        selector = _selector(gateway.spec)
        workloads = catalog.selected(selector)
        if not workloads:
            yield Message(ReferencedResourceNotFound, catalog.ref(gateway),
                          ("selector", quoted(selector_text(selector))))
            continue
        fronting = [s for s in catalog.services.values() if s.source == "Kubernetes"
                    and any(w in s.members for w in workloads)]
        if not fronting:
            continue
        reachable: set[int] = set()
        for service in fronting:
            for port in service.ports:
                target = port.target_port or str(port.number)
                if not target.isdigit():
                    # A named target port: which number it is depends on the pod; accept both.
                    reachable.add(port.number)
                    continue
                reachable.add(int(target))
        for server in gateway.spec.get("servers") or ():
            number = int((server.get("port") or {}).get("number") or 0)
            if number and number not in reachable:
                yield Message(GatewayPortNotOnWorkload, catalog.ref(gateway), (selector_text(selector), number))


def _bare(host: str) -> str:
    """A server host without its `namespace/` part."""
    return host.rpartition("/")[2]


def _conflicts(catalog: Catalog) -> Iterator[Message]:
    # (selector, port) -> gateway "ns/name" -> every host its servers on that port claim.
    claims: dict[tuple[str, int], dict[str, list[str]]] = {}
    for gateway in catalog.of_kind("Gateway"):
        selector = selector_text(_selector(gateway.spec))
        for server in gateway.spec.get("servers") or ():
            number = int((server.get("port") or {}).get("number") or 0)
            hosts = claims.setdefault((selector, number), {}).setdefault(f"{gateway.namespace}/{gateway.name}", [])
            hosts.extend(_bare(str(h)) for h in server.get("hosts") or ())
    for gateway in catalog.of_kind("Gateway"):
        name = f"{gateway.namespace}/{gateway.name}"
        selector = selector_text(_selector(gateway.spec))
        for server in gateway.spec.get("servers") or ():
            number = int((server.get("port") or {}).get("number") or 0)
            hosts = [_bare(str(h)) for h in server.get("hosts") or ()]
            others = sorted(other for other, claimed in claims.get((selector, number), {}).items()
                            if other != name and any(host_matches(h, c) for h in hosts for c in claimed))
            if others:
                yield Message(ConflictingGateways, catalog.ref(gateway),
                              (",".join(others), selector, str(number), ",".join(hosts)))


INGRESS_GATEWAY_PORTS = Analyzer(
    "gateway.IngressGatewayPortAnalyzer", "Checks a gateway's ports against the gateway's Kubernetes service ports",
    _ports, ("Gateway", "ServiceEntry", "WorkloadEntry"), needs_platform=True)
CONFLICTING_GATEWAYS = Analyzer(
    "gateway.ConflictingGatewayAnalyzer", "Checks a gateway's selector, port number and hosts", _conflicts,
    ("Gateway",))
