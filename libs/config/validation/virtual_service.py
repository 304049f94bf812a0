"""VirtualService rules (istio/istio pkg/config/validation ValidateVirtualService)."""

from __future__ import annotations

import json
from typing import Any

from libs.config.validation import hosts, labels, ports, scope
from libs.config.validation._checker import Checker
from libs.config.validation.destinations import route_destinations
from libs.config.validation.http_route import http_route


def _bound_to_gateway(gateways: list[str]) -> bool:
    """A VirtualService applies to sidecars unless it names gateways without `mesh`."""
    return bool(gateways) and "mesh" not in gateways


def _hosts(check: Checker, spec: dict[str, Any]) -> None:
    gateway = _bound_to_gateway(spec.get("gateways", []))
    sni = any(match.get("sniHosts") for tls in spec.get("tls", []) for match in tls.get("match", []))
    valid = True
    for i, host in enumerate(spec.get("hosts", [])):
        path = f"spec.hosts[{i}]"
        # Gateways route SNI names of auto-passthrough ("outbound_.80_._.svc.example").
        problem = None if gateway and sni and host.startswith("outbound_.") else hosts.wildcard_domain_problem(host)
        if problem:
            if not hosts.is_ip(host):
                check.error(path, problem)
                valid = False
        elif host == "*" and not gateway:
            check.error(path, "wildcard host '*' is not allowed for VirtualServices bound to the mesh (sidecars)")
            valid = False
    if not valid:
        return
    names = spec.get("hosts", [])
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if hosts.host_matches(first, second):
                check.error("spec.hosts", f"duplicate hosts in virtual service: {first} & {second}")


def _delegate(check: Checker, spec: dict[str, Any]) -> None:
    """A VirtualService without hosts is a delegate: only HTTP routes, reached from a root."""
    for field, what in (("gateways", "gateways"), ("tls", "tls routes"), ("tcp", "tcp routes")):
        if spec.get(field):
            check.error(f"spec.{field}", f"a delegate VirtualService (no hosts) cannot have {what}")


def _l4_match(check: Checker, path: str, match: dict[str, Any]) -> None:
    for i, subnet in enumerate(match.get("destinationSubnets", [])):
        problem = hosts.ip_or_cidr_problem(subnet)
        if problem:
            check.error(f"{path}.destinationSubnets[{i}]", problem)
    if match.get("port"):
        ports.port_number(check, f"{path}.port", match["port"])
    labels.labels(check, f"{path}.sourceLabels", match.get("sourceLabels", {}))
    hosts.gateway_names(check, f"{path}.gateways", match.get("gateways", []))


def _tls_route(check: Checker, path: str, route: dict[str, Any], spec: dict[str, Any]) -> None:
    if not route.get("match"):
        check.error(f"{path}.match", "a TLS route needs at least one match")
    gateway = _bound_to_gateway(spec.get("gateways", []))
    for i, match in enumerate(route.get("match", [])):
        where = f"{path}.match[{i}]"
        if not match.get("sniHosts"):
            check.error(f"{where}.sniHosts", "a TLS match needs at least one SNI host")
        for j, sni in enumerate(match.get("sniHosts", [])):
            _sni_host(check, f"{where}.sniHosts[{j}]", sni, spec.get("hosts", []), gateway=gateway)
        _l4_match(check, where, match)
    if not route.get("route"):
        check.error(f"{path}.route", "a TLS route needs a route")
    route_destinations(check, f"{path}.route", route.get("route", []))


def _sni_host(check: Checker, path: str, sni: str, vs_hosts: list[str], *, gateway: bool) -> None:
    problem = None if gateway and sni.startswith("outbound_.") else hosts.wildcard_domain_problem(sni)
    if problem:
        if hosts.is_ip(sni):
            check.warn(path, f"SNI host {sni!r} is an IP address: against the SNI spec, most clients never send it")
        else:
            check.error(path, problem)
        return
    if not any(hosts.host_subset_of(sni, host) for host in vs_hosts):
        check.error(path, f"SNI host {sni!r} is not a compatible subset of any of the virtual service hosts")


def _unreachable(check: Checker, kind: str, routes: list[dict[str, Any]]) -> None:
    """Istio warns when a rule can never be reached: after a catch-all, or matching only
    what earlier rules already match."""
    seen: dict[str, int] = {}
    catch_all: int | None = None
    for i, route in enumerate(routes):
        matches = route.get("match", [])
        if not matches:
            if catch_all is not None:
                check.warn(f"spec.{kind}[{i}]", f"rule not used: only the last rule can have no matches "
                                                f"(rule {catch_all} has none)")
            catch_all = i
            continue
        duplicates = 0
        for j, match in enumerate(matches):
            key = json.dumps({k: v for k, v in match.items() if k != "name"}, sort_keys=True)
            if key in seen:
                duplicates += 1
                check.warn(f"spec.{kind}[{i}].match[{j}]", f"match not used: same as a match of rule {seen[key]}")
            else:
                seen[key] = i
        if duplicates == len(matches):
            check.warn(f"spec.{kind}[{i}]", "rule not used: all its matches are used by earlier rules")


def validate(spec: dict[str, Any], check: Checker) -> None:
    if not spec.get("hosts"):
        _delegate(check, spec)
    gateway = _bound_to_gateway(spec.get("gateways", []))
    hosts.gateway_names(check, "spec.gateways", spec.get("gateways", []))
    _hosts(check, spec)
    if not (spec.get("http") or spec.get("tcp") or spec.get("tls")):
        check.error("spec", "at least one of http, tcp or tls routes is required")
    for i, route in enumerate(spec.get("http", [])):
        path = f"spec.http[{i}]"
        http_route(check, path, route, in_delegate=not spec.get("hosts"))
        if not gateway:
            # Claims exist only where a gateway authenticated the request.
            for j, match in enumerate(route.get("match", [])):
                for field in ("headers", "withoutHeaders"):
                    for name in match.get(field, {}):
                        if name.startswith("@request.auth.claims"):
                            check.error(f"{path}.match[{j}].{field}[{name}]", "JWT claim based routing is only "
                                                                           "supported for gateways")
    for i, route in enumerate(spec.get("tls", [])):
        _tls_route(check, f"spec.tls[{i}]", route, spec)
    for i, route in enumerate(spec.get("tcp", [])):
        path = f"spec.tcp[{i}]"
        for j, match in enumerate(route.get("match", [])):
            _l4_match(check, f"{path}.match[{j}]", match)
        if not route.get("route"):
            check.error(f"{path}.route", "a TCP route needs a route")
        route_destinations(check, f"{path}.route", route.get("route", []))
    scope.export_to(check, "spec.exportTo", spec.get("exportTo", []))
    for kind in ("http", "tcp", "tls"):
        _unreachable(check, kind, spec.get(kind, []))
