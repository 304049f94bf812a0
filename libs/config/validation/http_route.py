"""One HTTP route of a VirtualService: what it does (route, redirect, direct response or
delegate), what it matches, and its policies (Istio's validateHTTPRoute)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, http, http_policies, labels, ports, quantities
from libs.config.validation._checker import Checker
from libs.config.validation.destinations import route_destinations

_MATCH_FIELDS = ("uri", "scheme", "method", "authority")


def _actions(check: Checker, path: str, route: dict[str, Any], *, in_delegate: bool) -> None:
    has_route = bool(route.get("route"))
    if "delegate" in route:
        if in_delegate:
            check.error(f"{path}.delegate", "a delegate VirtualService's routes cannot delegate again")
        # A root route hands the request over: it may not also answer it.
        for field in ("route", "redirect", "directResponse"):
            if field in route:
                check.error(f"{path}.{field}", f"a route with a delegate must not set {field}")
        return
    if "redirect" in route:
        for field in ("route", "fault", "rewrite", "directResponse"):
            if field in route and (field != "route" or has_route):
                check.error(path, f"an HTTP route cannot have both redirect and {field}")
    elif "directResponse" in route:
        for field in ("route", "fault", "rewrite"):
            if field in route and (field != "route" or has_route):
                check.error(path, f"an HTTP route cannot have both directResponse and {field}")
    elif not has_route:
        check.error(path, "an HTTP route needs a route, redirect, directResponse or delegate")


def _string_matches(check: Checker, path: str, match: dict[str, Any], *, in_delegate: bool) -> None:
    """Regexes are checked with RE2; a delegate's matches are merged into its root's by
    prefix and exact comparison, so regexes cannot be used there."""
    for field in _MATCH_FIELDS:
        if field in match:
            if in_delegate and "regex" in match[field]:
                check.error(f"{path}.{field}.regex", f"{field} match does not support regex in a delegate")
            else:
                http.string_match(check, f"{path}.{field}", match[field])
    for field in ("headers", "withoutHeaders", "queryParams"):
        for name, value in match.get(field, {}).items():
            where = f"{path}.{field}[{name}]"
            if field != "queryParams" and not http.is_jwt_claim_key(name):
                http.header_name(check, where, name)
            if in_delegate and "regex" in value:
                check.error(f"{where}.regex", f"{field} match does not support regex in a delegate")
            elif value:
                http.string_match(check, where, value)


def _match(check: Checker, path: str, match: dict[str, Any], *, in_delegate: bool) -> None:
    _string_matches(check, path, match, in_delegate=in_delegate)
    for field in ("headers", "withoutHeaders"):
        for name in match.get(field, {}):
            if name != name.lower() and not http.is_jwt_claim_key(name):
                check.warn(f"{path}.{field}[{name}]", "header names are matched lower-cased; "
                                                      "write them in lower case")
    if match.get("port"):
        ports.port_number(check, f"{path}.port", match["port"])
    labels.labels(check, f"{path}.sourceLabels", match.get("sourceLabels", {}))
    hosts.gateway_names(check, f"{path}.gateways", match.get("gateways", []))
    namespace = match.get("sourceNamespace", "")
    if namespace and not hosts.is_dns_label(namespace):
        check.error(f"{path}.sourceNamespace", f"sourceNamespace {namespace!r} is not a DNS-1123 label")


def http_route(check: Checker, path: str, route: dict[str, Any], *, in_delegate: bool) -> None:
    _actions(check, path, route, in_delegate=in_delegate)
    for i, match in enumerate(route.get("match", [])):
        _match(check, f"{path}.match[{i}]", match, in_delegate=in_delegate)
    if "headers" in route:
        http_policies.header_operations(check, f"{path}.headers", route["headers"])
    http_policies.authority_rewrite(check, path, route)
    for i, target in enumerate(route.get("route", [])):
        if "headers" in target:
            http_policies.header_operations(check, f"{path}.route[{i}].headers", target["headers"])
    route_destinations(check, f"{path}.route", route.get("route", []))
    if "corsPolicy" in route:
        http_policies.cors(check, f"{path}.corsPolicy", route["corsPolicy"])
    if "fault" in route:
        http_policies.fault(check, f"{path}.fault", route["fault"])
    http_policies.mirrors(check, path, route)
    if "redirect" in route:
        http_policies.redirect(check, f"{path}.redirect", route["redirect"])
    if "directResponse" in route:
        http_policies.direct_response(check, f"{path}.directResponse", route["directResponse"])
    if "retries" in route:
        http_policies.retries(check, f"{path}.retries", route["retries"])
    if "rewrite" in route:
        http_policies.rewrite(check, f"{path}.rewrite", route["rewrite"])
    if "timeout" in route:
        quantities.duration(check, f"{path}.timeout", route["timeout"])
    if "websocketUpgrade" in route:
        check.warn(f"{path}.websocketUpgrade", "removed from Istio's API and ignored: WebSocket upgrades are "
                                               "always allowed")
