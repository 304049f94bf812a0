"""Mesh-wide settings that translation reads (Istio's MeshConfig subset).

Pilot's flags give the defaults; the `istio` ConfigMap (the internal kind `MeshConfig` in
`mesh-config`, validated by galley) overrides every field it sets, so a mesh config edit
takes effect with the next push like any other config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from libs.config import Resource
from libs.config.durations import parse_duration
from libs.config.label_selectors import LabelSelector, parse_selector

MESH_CONFIG_NAME = "istio"


@dataclass(frozen=True)
class ExtAuthzProvider:
    """An `envoyExtAuthzGrpc` or `envoyExtAuthzHttp` extension provider (AuthorizationPolicy CUSTOM)."""

    name: str
    grpc: bool
    # `[<namespace>/]<hostname>` as written; `host` is the hostname part.
    service: str
    port: int
    # Istio's default: 600 s, i.e. the check may take as long as the request.
    timeout_s: float = 600.0
    fail_open: bool = False
    status_on_error: int = 403
    path_prefix: str = ""
    include_request_headers: tuple[str, ...] = ()
    include_additional_headers: tuple[tuple[str, str], ...] = ()
    # (maxRequestBytes, allowPartialMessage, packAsBytes) when the body is sent.
    request_body: tuple[int, bool, bool] | None = None
    headers_to_upstream_on_allow: tuple[str, ...] = ()
    headers_to_downstream_on_deny: tuple[str, ...] = ()
    headers_to_downstream_on_allow: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return self.service.rpartition("/")[2]


@dataclass(frozen=True)
class MeshConfig:
    # The namespace whose resources apply mesh-wide (Istio's istio-system).
    root_namespace: str = "istio-system"
    # Kubernetes DNS suffix: short host `reviews` in namespace `default` is
    # `reviews.default.svc.<domain_suffix>`.
    domain_suffix: str = "cluster.local"
    # ALLOW_ANY: unknown destinations pass through; REGISTRY_ONLY: they are refused.
    outbound_traffic_policy: str = "ALLOW_ANY"
    # Seconds Envoy waits for an upstream connection (Istio's connectTimeout default).
    connect_timeout_s: float = 10.0
    # SPIFFE trust domain of the mesh's workload identities.
    trust_domain: str = "cluster.local"
    # Proxies in front of a gateway that set X-Forwarded-For (defaultConfig.gatewayTopology).
    num_trusted_proxies: int = 0
    ext_authz: tuple[ExtAuthzProvider, ...] = ()
    access_log_file: str = ""
    access_log_encoding: str = "TEXT"
    access_log_format: str = ""
    # `host:port` of the gRPC access log service every proxy streams its entries to
    # (enableEnvoyAccessLogService + defaultConfig.envoyAccessLogService, or an envoyHttpAls
    # provider in defaultProviders.accessLogging): where telemetry makes Istio's metrics.
    access_log_service: str = ""
    enable_tracing: bool = False
    # `host:port` of the Zipkin collector (defaultConfig.tracing.zipkin.address, or a zipkin
    # provider in defaultProviders.tracing); spans are sent only with enable_tracing.
    zipkin_address: str = ""
    # Percent of requests traced (defaultConfig.tracing.sampling; Istio's default is 1).
    tracing_sampling: float = 1.0
    # Every extension provider as written (JSON), for the kinds translation does not type.
    extension_providers_json: str = "[]"
    # `host:port` of the policy service (Istio 1.0's mixerCheckServer) when policy checks are
    # on (not disablePolicyChecks): workloads Mixer rules may reach get its check and quota filters.
    policy_server: str = ""
    # Istio's policyCheckFailOpen: a policy service that cannot answer lets requests through.
    policy_check_fail_open: bool = False
    # Istio's discoverySelectors: the namespaces whose Kubernetes Services, EndpointSlices and
    # Pods pilot discovers (any selector matching the namespace's labels); none: every one.
    discovery_selectors: tuple[LabelSelector, ...] = ()
    _providers: dict[str, ExtAuthzProvider] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._providers.update({p.name: p for p in self.ext_authz})

    def ext_authz_provider(self, name: str) -> ExtAuthzProvider | None:
        return self._providers.get(name)


def _seconds(value: str | None, default: float) -> float:
    return float(parse_duration(value)) if value else default


def _ext_authz(name: str, body: dict[str, Any], *, grpc: bool) -> ExtAuthzProvider:
    body_check = body.get("includeRequestBodyInCheck")
    return ExtAuthzProvider(
        name=name, grpc=grpc, service=body.get("service", ""), port=int(body.get("port", 0)),
        timeout_s=_seconds(body.get("timeout"), 600.0), fail_open=bool(body.get("failOpen", False)),
        status_on_error=int(body.get("statusOnError") or 403), path_prefix=body.get("pathPrefix", ""),
        include_request_headers=tuple(body.get("includeRequestHeadersInCheck")
                                      or body.get("includeHeadersInCheck") or ()),
        include_additional_headers=tuple(sorted((body.get("includeAdditionalHeadersInCheck") or {}).items())),
        request_body=None if body_check is None else (int(body_check.get("maxRequestBytes", 0)),
                                                      bool(body_check.get("allowPartialMessage", False)),
                                                      bool(body_check.get("packAsBytes", False))),
        headers_to_upstream_on_allow=tuple(body.get("headersToUpstreamOnAllow") or ()),
        headers_to_downstream_on_deny=tuple(body.get("headersToDownstreamOnDeny") or ()),
        headers_to_downstream_on_allow=tuple(body.get("headersToDownstreamOnAllow") or ()),
    )


def apply_mesh_config(base: MeshConfig, spec: dict[str, Any]) -> MeshConfig:
    """`base` (pilot's flags) with every field the validated mesh config sets."""
    changes: dict[str, Any] = {}
    simple = {"rootNamespace": "root_namespace", "trustDomain": "trust_domain", "accessLogFile": "access_log_file",
              "accessLogEncoding": "access_log_encoding", "accessLogFormat": "access_log_format",
              "enableTracing": "enable_tracing", "policyCheckFailOpen": "policy_check_fail_open"}
    for key, attribute in simple.items():
        if key in spec:
            changes[attribute] = spec[key]
    if "outboundTrafficPolicy" in spec:
        changes["outbound_traffic_policy"] = spec["outboundTrafficPolicy"].get("mode", "REGISTRY_ONLY")
    if "connectTimeout" in spec:
        changes["connect_timeout_s"] = float(parse_duration(spec["connectTimeout"]))
    default_config = spec.get("defaultConfig", {})
    if "numTrustedProxies" in default_config.get("gatewayTopology", {}):
        changes["num_trusted_proxies"] = int(default_config["gatewayTopology"]["numTrustedProxies"])
    if "sampling" in default_config.get("tracing", {}):
        changes["tracing_sampling"] = float(Decimal(str(default_config["tracing"]["sampling"])))
    if "discoverySelectors" in spec:
        changes["discovery_selectors"] = tuple(parse_selector(body, f"discoverySelectors[{i}]")
                                               for i, body in enumerate(spec["discoverySelectors"] or []))
    providers = spec.get("extensionProviders", [])
    changes.update(_telemetry_sinks(spec, default_config, providers))
    if spec.get("mixerCheckServer"):
        changes["policy_server"] = "" if spec.get("disablePolicyChecks") else spec["mixerCheckServer"]
    if providers:
        changes["extension_providers_json"] = json.dumps(providers, sort_keys=True)
        changes["ext_authz"] = tuple(
            _ext_authz(p["name"], p[kind], grpc=kind == "envoyExtAuthzGrpc")
            for p in providers for kind in ("envoyExtAuthzGrpc", "envoyExtAuthzHttp") if kind in p)
    return replace(base, **changes)


def _service_address(body: dict[str, Any]) -> str:
    return f"{str(body.get('service', '')).rpartition('/')[2]}:{body.get('port', 0)}"


def _telemetry_sinks(spec: dict[str, Any], default_config: dict[str, Any],
                     providers: list[dict[str, Any]]) -> dict[str, Any]:
    """Where access log entries and spans go: Istio's legacy mesh fields, or the extension
    providers the mesh's defaultProviders name (the first of each kind wins)."""
    found: dict[str, Any] = {}
    by_name = {p.get("name"): p for p in providers}
    defaults = spec.get("defaultProviders", {})
    als = default_config.get("envoyAccessLogService", {})
    if spec.get("enableEnvoyAccessLogService") and isinstance(als, dict) and als.get("address"):
        found["access_log_service"] = str(als["address"])
    for name in defaults.get("accessLogging", []):
        provider = by_name.get(name, {})
        if "access_log_service" not in found and "envoyHttpAls" in provider:
            found["access_log_service"] = _service_address(provider["envoyHttpAls"])
    zipkin = default_config.get("tracing", {}).get("zipkin", {})
    if zipkin.get("address"):
        found["zipkin_address"] = zipkin["address"]
    for name in defaults.get("tracing", []):
        provider = by_name.get(name, {})
        if "zipkin" in provider:
            found["zipkin_address"] = _service_address(provider["zipkin"])
            # Naming a tracing provider is Istio's modern way of turning tracing on.
            found["enable_tracing"] = True
            break
    return found


def mesh_from_config(resources: list[Resource], base: MeshConfig, system_namespace: str) -> MeshConfig:
    """The mesh config in force: the `istio` ConfigMap of Istio's system namespace, over `base`."""
    for resource in resources:
        if resource.namespace == system_namespace and resource.name == MESH_CONFIG_NAME:
            return apply_mesh_config(base, resource.spec)
    return base


def resolve_host(host: str, namespace: str, mesh: MeshConfig) -> str:
    """Istio's short-name rule: a host without dots is a service in `namespace`."""
    if "*" in host or "." in host:
        return host
    return f"{host}.{namespace}.svc.{mesh.domain_suffix}"
