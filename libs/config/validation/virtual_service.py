"""VirtualService rules (istio/istio pkg/config/validation ValidateVirtualService)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import common
from libs.config.validation._checker import Checker


def _destination(check: Checker, path: str, destination: dict[str, Any]) -> None:
    host = destination.get("host", "")
    if not host:
        check.error(f"{path}.host", "a destination needs a host")
    elif host == "*" or "*" in host:
        check.error(f"{path}.host", f"destination host {host!r} must not be a wildcard")
    else:
        common.fqdn(check, f"{path}.host", host)
    subset = destination.get("subset")
    if subset is not None:
        common.dns1123_label(check, f"{path}.subset", subset)
    if "port" in destination:
        common.port_number(check, f"{path}.port.number", destination["port"].get("number", 0))


def _weights(check: Checker, path: str, routes: list[dict[str, Any]]) -> None:
    total = 0
    for i, route in enumerate(routes):
        weight = route.get("weight", 0)
        if weight < 0 or weight > 100:
            check.error(f"{path}[{i}].weight", f"weight {weight} must be in 0-100")
        total += weight
    if len(routes) > 1 and total != 100:
        check.error(path, f"weights sum to {total}, must be 100")
    if len(routes) == 1 and "weight" in routes[0] and routes[0]["weight"] not in (0, 100):
        check.error(f"{path}[0].weight", f"a single destination's weight must be 100 (or unset), not "
                                         f"{routes[0]['weight']}")


def _string_match(check: Checker, path: str, match: dict[str, Any]) -> None:
    if not match:
        check.error(path, "one of exact, prefix or regex is required")


def _http_route(check: Checker, path: str, http: dict[str, Any]) -> None:
    has_route = bool(http.get("route"))
    has_redirect = "redirect" in http
    has_direct = "directResponse" in http
    has_delegate = "delegate" in http
    if sum((has_route, has_redirect, has_direct, has_delegate)) == 0:
        check.error(path, "one of route, redirect, directResponse or delegate is required")
    if has_route and (has_redirect or has_direct):
        check.error(path, "route cannot be combined with redirect or directResponse")
    if has_redirect and has_direct:
        check.error(path, "redirect cannot be combined with directResponse")
    if "websocketUpgrade" in http:
        check.warn(f"{path}.websocketUpgrade", "deprecated and ignored: WebSocket upgrades are always allowed")
    for i, match in enumerate(http.get("match", [])):
        mpath = f"{path}.match[{i}]"
        for field in ("uri", "scheme", "method", "authority"):
            if field in match:
                _string_match(check, f"{mpath}.{field}", match[field])
        if "port" in match:
            common.port_number(check, f"{mpath}.port", match["port"])
        common.labels(check, f"{mpath}.sourceLabels", match.get("sourceLabels", {}))
    routes = http.get("route", [])
    for i, route in enumerate(routes):
        if "destination" not in route:
            check.error(f"{path}.route[{i}].destination", "a route needs a destination")
        else:
            _destination(check, f"{path}.route[{i}].destination", route["destination"])
    _weights(check, f"{path}.route", routes)


def _l4_routes(check: Checker, path: str, routes: list[dict[str, Any]]) -> None:
    if not routes:
        check.error(path, "at least one route is required")
    for i, route in enumerate(routes):
        if "destination" not in route:
            check.error(f"{path}[{i}].destination", "a route needs a destination")
        else:
            _destination(check, f"{path}[{i}].destination", route["destination"])
    _weights(check, path, routes)


def validate(spec: dict[str, Any], check: Checker) -> None:
    hosts = spec.get("hosts", [])
    gateways = spec.get("gateways", [])
    if not hosts:
        check.error("spec.hosts", "at least one host is required")
    for i, host in enumerate(hosts):
        if common.is_ip(host):
            continue
        common.wildcard_host(check, f"spec.hosts[{i}]", host)
        if host == "*" and (not gateways or "mesh" in gateways):
            check.error(f"spec.hosts[{i}]", "'*' is only allowed for VirtualServices bound to gateways "
                                            "(and not to 'mesh')")
    if not spec.get("http") and not spec.get("tcp") and not spec.get("tls"):
        check.error("spec", "at least one of http, tcp or tls routes is required")
    for i, http in enumerate(spec.get("http", [])):
        _http_route(check, f"spec.http[{i}]", http)
    for i, tcp in enumerate(spec.get("tcp", [])):
        _l4_routes(check, f"spec.tcp[{i}].route", tcp.get("route", []))
    for i, tls in enumerate(spec.get("tls", [])):
        if not tls.get("match"):
            check.error(f"spec.tls[{i}].match", "TLS routes need at least one match")
        for j, match in enumerate(tls.get("match", [])):
            if not match.get("sniHosts"):
                check.error(f"spec.tls[{i}].match[{j}].sniHosts", "at least one SNI host is required")
        _l4_routes(check, f"spec.tls[{i}].route", tls.get("route", []))
