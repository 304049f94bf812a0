"""MeshConfig rules (istio/istio pkg/config/validation ValidateMeshConfig and
ValidateExtensionProviders), with paths under the ConfigMap key users edit: `data.mesh`."""

from __future__ import annotations

from typing import Any

from libs.config.label_selectors import SelectorError, parse_selector
from libs.config.validation import hosts, http, quantities
from libs.config.validation._checker import Checker

ROOT = "data.mesh"
# Provider kinds that name a service Envoy must reach.
_SERVICE_KINDS = ("envoyExtAuthzHttp", "envoyExtAuthzGrpc", "zipkin", "envoyHttpAls", "envoyTcpAls")


def _service(check: Checker, path: str, provider: dict[str, Any]) -> None:
    """Istio's `[<namespace>/]<hostname>` plus a port, both required."""
    service = provider.get("service", "")
    if not service:
        check.error(f"{path}.service", "service is required")
    else:
        _, _, host = service.rpartition("/")
        problem = None if hosts.is_ip(host) else hosts.fqdn_problem(host)
        if problem:
            check.error(f"{path}.service", problem)
    port = provider.get("port", 0)
    if not 1 <= port <= 65535:
        check.error(f"{path}.port", f"port {port} must be in the range 1-65535")


def _ext_authz(check: Checker, path: str, provider: dict[str, Any]) -> None:
    if "timeout" in provider:
        quantities.duration(check, f"{path}.timeout", provider["timeout"])
    status = provider.get("statusOnError")
    if status:
        if not status.isdigit():
            check.error(f"{path}.statusOnError", f"{status!r} is not an HTTP status code")
        else:
            http.http_status(check, f"{path}.statusOnError", int(status))
    for field in ("includeRequestHeadersInCheck", "includeHeadersInCheck", "headersToUpstreamOnAllow",
                  "headersToDownstreamOnDeny", "headersToDownstreamOnAllow"):
        for i, name in enumerate(provider.get(field, [])):
            http.header_name(check, f"{path}.{field}[{i}]", name)
    prefix = provider.get("pathPrefix")
    if prefix and not prefix.startswith("/"):
        check.error(f"{path}.pathPrefix", f"pathPrefix {prefix!r} must begin with /")


def _providers(check: Checker, providers: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for i, provider in enumerate(providers):
        path = f"{ROOT}.extensionProviders[{i}]"
        name = provider.get("name", "")
        if not name:
            check.error(f"{path}.name", "every extension provider needs a name")
        elif name in names:
            check.error(f"{path}.name", f"duplicate extension provider name {name!r}")
        names.add(name)
        kinds = [key for key in provider if key != "name"]
        if not kinds:
            check.error(path, f"extension provider {name!r} names no provider (e.g. envoyExtAuthzGrpc)")
            continue
        kind = kinds[0]
        where = f"{path}.{kind}"
        if kind in _SERVICE_KINDS:
            _service(check, where, provider[kind])
        if kind in ("envoyExtAuthzHttp", "envoyExtAuthzGrpc"):
            _ext_authz(check, where, provider[kind])
        elif kind == "envoyFileAccessLog" and not provider[kind].get("path"):
            check.error(f"{where}.path", "path is required (for example /dev/stdout)")
    return names


def validate(spec: dict[str, Any], check: Checker) -> None:
    root = spec.get("rootNamespace")
    if root is not None and not hosts.is_dns_label(root):
        check.error(f"{ROOT}.rootNamespace", f"{root!r} is not a namespace name")
    trust_domain = spec.get("trustDomain")
    if trust_domain is not None and (not trust_domain or "/" in trust_domain or ":" in trust_domain):
        check.error(f"{ROOT}.trustDomain", f"{trust_domain!r} is not a trust domain (a DNS name such as cluster.local)")
    if "connectTimeout" in spec:
        quantities.duration(check, f"{ROOT}.connectTimeout", spec["connectTimeout"])
    names = _providers(check, spec.get("extensionProviders", []))
    for kind, listed in spec.get("defaultProviders", {}).items():
        for i, name in enumerate(listed):
            if name not in names:
                check.error(f"{ROOT}.defaultProviders.{kind}[{i}]", f"extension provider {name!r} is not defined "
                                                                    "in extensionProviders")
    for i, selector in enumerate(spec.get("discoverySelectors") or []):
        try:
            parse_selector(selector, f"{ROOT}.discoverySelectors[{i}]")
        except SelectorError as exc:
            check.error(exc.path, exc.reason)
    tracing = spec.get("defaultConfig", {}).get("tracing", {})
    if "sampling" in tracing:
        quantities.percent(check, f"{ROOT}.defaultConfig.tracing.sampling", tracing["sampling"])
    encoding = spec.get("accessLogEncoding")
    text_format = spec.get("accessLogFormat", "")
    if encoding == "JSON" and text_format and not text_format.lstrip().startswith("{"):
        check.error(f"{ROOT}.accessLogFormat", "with accessLogEncoding JSON the format must be a JSON object of "
                                               "fields to command operators")
