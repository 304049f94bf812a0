"""AuthorizationPolicy rules (istio/istio pkg/config/validation ValidateAuthorizationPolicy
and pkg/config/security)."""

from __future__ import annotations

import re
from typing import Any

from libs.config.validation import hosts, ports, scope
from libs.config.validation._checker import Checker

_SOURCE_FIELDS = ("principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
                  "notNamespaces", "serviceAccounts", "notServiceAccounts", "trustDomains", "notTrustDomains",
                  "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks")
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")
# Fields a CUSTOM (external authorizer) policy cannot match on: they need Istio's own
# authentication results, which the external authorizer runs before.
_NOT_WITH_CUSTOM = ("principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
                    "notNamespaces")
# Path templates Envoy's uri_template matcher does not take: named variables, bare * and **.
_UNSUPPORTED_TEMPLATE = re.compile(r"/\{\w+=\*\*?\}|\{\w*\}|/\*\*?|\*\*?/")
_MAP_KEY = re.compile(r"^[^\[\]]+\[[^\[\]]+\]$")
# JWT claims may nest: `request.auth.claims[org][team]`.
_CLAIM_KEY = re.compile(r"^request\.auth\.claims(\[[^\[\]]+\])+$")
_IP_KEYS = ("source.ip", "remote.ip", "destination.ip")
_PLAIN_KEYS = ("source.namespace", "source.principal", "request.auth.principal", "request.auth.audiences",
               "request.auth.presenter", "connection.sni", "source.serviceAccount")
_MAP_PREFIXES = ("request.headers", "request.auth.claims", "experimental.envoy.filters.")
# What Go's strconv.ParseBool accepts.
_BOOLEANS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})
_REPLACED_KEYS = {
    "destination.namespace": "replaced by the policy's own namespace",
    "destination.name": "deprecated (only supported in v1alpha1)",
    "destination.user": "deprecated (only supported in v1alpha1)",
}


def _ip_blocks(check: Checker, path: str, values: list[str]) -> None:
    for i, value in enumerate(values):
        problem = hosts.ip_or_cidr_problem(value)
        if problem:
            check.error(f"{path}[{i}]", problem)


def _match_values(check: Checker, path: str, values: list[str]) -> None:
    """Istio matches `*` (present), `*suffix`, `prefix*` and exact values; a `*` anywhere
    else is compared literally, which is almost never what was meant.  Path templates
    (`/{*}/x`, `/{**}`) have their own syntax, checked in `_paths`."""
    for i, value in enumerate(values):
        if not value:
            check.error(f"{path}[{i}]", "empty values are not allowed")
        elif "{*}" in value or "{**}" in value:
            continue
        elif "*" in value[1:-1] or (value.count("*") > 1 and value != "*"):
            check.warn(f"{path}[{i}]", f"{value!r}: only a leading or trailing '*' is a wildcard; "
                                       "this one matches literally")


def _paths(check: Checker, path: str, values: list[str]) -> None:
    for i, value in enumerate(values):
        if ("{*}" in value or "{**}" in value) and _UNSUPPORTED_TEMPLATE.search(value):
            check.error(f"{path}[{i}]", f"invalid or unsupported path template {value!r} (use {{*}} and {{**}} "
                                        "as whole path segments)")


def _methods(check: Checker, path: str, values: list[str]) -> None:
    for i, value in enumerate(values):
        if value and value != value.upper():
            check.warn(f"{path}[{i}]", f"HTTP methods are case-sensitive: {value!r} never matches {value.upper()!r}")


def _condition(check: Checker, path: str, condition: dict[str, Any]) -> None:
    key = condition.get("key", "")
    if not key:
        check.error(f"{path}.key", "a condition needs a key")
        return
    if not condition.get("values") and not condition.get("notValues"):
        check.error(path, f"at least one of values or notValues must be set for key {key}")
        return
    for field in ("values", "notValues"):
        values = condition.get(field, [])
        _match_values(check, f"{path}.{field}", values)
        if key in _IP_KEYS:
            _ip_blocks(check, f"{path}.{field}", values)
        elif key == "destination.port":
            ports.port_strings(check, f"{path}.{field}", values)
    if key.startswith(_MAP_PREFIXES):
        if not (_CLAIM_KEY if key.startswith("request.auth.claims") else _MAP_KEY).match(key):
            check.error(f"{path}.key", f"bad key {key!r}: should have the form name[item]")
    elif key in _REPLACED_KEYS:
        check.error(f"{path}.key", f"attribute {key} is {_REPLACED_KEYS[key]}")
    elif key.startswith("destination.labels"):
        check.error(f"{path}.key", f"attribute {key} is replaced by the policy's selector")
    elif key not in (*_IP_KEYS, *_PLAIN_KEYS, "destination.port"):
        check.error(f"{path}.key", f"unknown attribute {key!r}")


def _rule(check: Checker, path: str, rule: dict[str, Any], action: str) -> None:
    if "from" in rule and not rule["from"]:
        check.error(f"{path}.from", "from must not be empty when set")
    for i, entry in enumerate(rule.get("from", [])):
        where = f"{path}.from[{i}].source"
        source = entry.get("source")
        if source is None:
            check.error(where, "from.source is required")
            continue
        if not any(field in source for field in _SOURCE_FIELDS):
            check.error(where, "from.source must not be empty")
        for field in _SOURCE_FIELDS:
            values = source.get(field, [])
            if field.lower().endswith("ipblocks"):
                _ip_blocks(check, f"{where}.{field}", values)
            else:
                _match_values(check, f"{where}.{field}", values)
            if action == "CUSTOM" and field in _NOT_WITH_CUSTOM and values:
                check.error(f"{where}.{field}", f"{field} is not supported with action CUSTOM")
    if "to" in rule and not rule["to"]:
        check.error(f"{path}.to", "to must not be empty when set")
    for i, entry in enumerate(rule.get("to", [])):
        where = f"{path}.to[{i}].operation"
        operation = entry.get("operation")
        if operation is None:
            check.error(where, "to.operation is required")
            continue
        if not any(field in operation for field in _OPERATION_FIELDS):
            check.error(where, "to.operation must not be empty")
        for field in _OPERATION_FIELDS:
            values = operation.get(field, [])
            _match_values(check, f"{where}.{field}", values)
            if field in ("ports", "notPorts"):
                ports.port_strings(check, f"{where}.{field}", values)
            elif field in ("paths", "notPaths"):
                _paths(check, f"{where}.{field}", values)
            elif field in ("methods", "notMethods"):
                _methods(check, f"{where}.{field}", values)
    for i, condition in enumerate(rule.get("when", [])):
        where = f"{path}.when[{i}]"
        _condition(check, where, condition)
        key = condition.get("key", "")
        if action == "CUSTOM" and (key in ("source.namespace", "source.principal") or key.startswith("request.auth.")):
            check.error(f"{where}.key", f"{key} is not supported with action CUSTOM")


def _http_only(rule: dict[str, Any]) -> bool:
    """Whether a rule matches only on HTTP attributes, so on a TCP port it can never match."""
    sources = [entry.get("source") or {} for entry in rule.get("from", [])]
    operations = [entry.get("operation") or {} for entry in rule.get("to", [])]
    tcp_from = any(field in source for source in sources for field in
                   ("principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
                    "remoteIpBlocks", "notRemoteIpBlocks"))
    tcp_to = any("ports" in operation or "notPorts" in operation for operation in operations)
    return (bool(sources) and not operations and not tcp_from) or (bool(operations) and not tcp_to)


def validate(spec: dict[str, Any], check: Checker) -> None:
    scope.policy_selection(check, spec)
    action = spec.get("action", "ALLOW")
    if action in ("CUSTOM", "DENY") and "rules" not in spec:
        check.error("spec.rules", f"{action} without rules never triggers; add an empty rule {{}} to apply it to "
                                  "every request")
    if action == "CUSTOM" and "rules" in spec and not spec.get("provider", {}).get("name"):
        check.error("spec.provider.name", "action CUSTOM needs provider.name (the extension provider)")
    if "provider" in spec and action != "CUSTOM":
        check.error("spec.provider", f"provider is only allowed with action CUSTOM, not {action}")
    for i, rule in enumerate(spec.get("rules", [])):
        _rule(check, f"spec.rules[{i}]", rule, action)
        if action == "DENY" and _http_only(rule):
            check.warn(f"spec.rules[{i}]", "this DENY rule uses only HTTP attributes, so it denies all traffic to "
                                           "TCP ports in scope; specify the ports explicitly")
    dry_run = check.annotations.get("istio.io/dry-run")
    if dry_run is not None:
        if action not in ("ALLOW", "DENY"):
            check.error("metadata.annotations[istio.io/dry-run]", f"dry-run only supports actions ALLOW and DENY, "
                                                                  f"not {action}")
        elif dry_run not in _BOOLEANS:
            check.error("metadata.annotations[istio.io/dry-run]", f"{dry_run!r} is not a boolean")
