"""The policy service on a proxy's HTTP chains: Mixer's checks through ext_authz, and its
quotas through Envoy's rate-limit filter, as Istio 1.0's mixer filter did both.

Only where they can matter: a workload gets the check filter when some check rule may
apply to it (its static attributes, destination.labels and the like, do not already make
the rule's match false), and the rate-limit filter when a QuotaSpecBinding binds one of
its services; otherwise no filter and no extra hop.  The pod annotation
`policy.istio.io/check` (enable, disable, allow-on-error) and the mesh's
`policyCheckFailOpen` decide what a policy service that cannot answer means.

The rate-limit descriptors carry what the quota's dimensions need, the policy service
evaluating them: the quota and charge, the destination workload (which the policy service
looks up), the caller's address, and the request headers the dimensions read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2, http_uri_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.ratelimit.v3 import rate_limit_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf import any_pb2, wrappers_pb2

from libs.cexl import parse
from libs.config.directory import ServiceName, service_name
from libs.envoy import duration, pack
from libs.mixer import (
    CHARGE_KEY,
    CHECK_FORMATTERS,
    CHECK_HEADER_PREFIX,
    CHECK_HTTP_PORT_NAME,
    CHECK_LABELS_HEADER,
    CHECK_WORKLOAD_HEADER,
    DENIER_DEFAULT_CODE,
    DESTINATION_KEY,
    DESTINATION_LABELS_KEY,
    QUOTA_DOMAIN,
    QUOTA_KEY,
    MixerConfig,
    QuotaCharge,
    Rule,
    grpc_code_to_http,
    header_key,
)
from libs.mixer import build as build_mixer
from services.pilot.model.instances import service_instances
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import names
from services.pilot.networking.observability import address_cluster

POLICY_CLUSTER = "mixer_server"
CHECK_FILTER = "istio.mixer.check"
QUOTA_FILTER = "istio.mixer.quota"
# Mixer's proxy waited this long for a check before the failure policy applied.
TIMEOUT_S = 1.0
# A policy service that cannot answer, failing closed: Mixer's client reported UNAVAILABLE,
# which is HTTP 503 (Envoy's defaults, 403 and 500, would blame the caller or the app).
STATUS_ON_ERROR = 503
CHECK_ANNOTATION = "policy.istio.io/check"
PSEUDO_HEADERS = {"request.path": ":path", "request.url_path": ":path", "request.method": ":method",
                  "request.host": ":authority"}


@dataclass
class PolicyFilters:
    http: list[hcm.HttpFilter] = field(default_factory=list)
    rate_limits: list[rc.RateLimit] = field(default_factory=list)
    # `typed_per_filter_config` of the routes: the check's context (which workload asks).
    per_route: dict[str, any_pb2.Any] = field(default_factory=dict)
    # The cluster the filters call: a registry service's outbound cluster (referenced), or
    # one built here for a bare address.
    reference: str = ""
    cluster: cluster_pb2.Cluster | None = None
    warnings: list[str] = field(default_factory=list)


def mixer_config(push: PushContext) -> MixerConfig:
    return push.derived("mixer-config", lambda: build_mixer(
        [r for kind in ("rule", "handler", "instance", "denier", "listchecker", "memquota", "redisquota",
                        "checknothing", "listentry", "quota", "QuotaSpec", "QuotaSpecBinding")
         for r in push.config.of_kind(kind)], push.mesh.root_namespace))


def _destination(proxy: Proxy, push: PushContext) -> tuple[dict[str, Any], list[ServiceName]]:
    """What pilot knows of requests to this workload before any arrives, and its services."""
    known: dict[str, Any] = {"destination.namespace": proxy.namespace, "destination.labels": proxy.label_map,
                             "destination.workload.name": proxy.workload_name,
                             "destination.workload.namespace": proxy.namespace}
    hosts = sorted({instance.service.hostname for instance in service_instances(proxy, push)})
    services = [service_name(host, push.services[host].namespace) for host in hosts]
    if len(services) == 1:
        known.update({"destination.service.host": services[0].host, "destination.service.name": services[0].name,
                      "destination.service.namespace": services[0].namespace})
    return known, services


def _policy_cluster(push: PushContext) -> tuple[str, cluster_pb2.Cluster | None]:
    """The cluster that reaches the policy service: as Istio 1.0, a `mixerCheckServer` that
    names a registry service (istio-policy.istio-system.svc.cluster.local:9091) is reached
    through its outbound cluster, balanced over every replica; a bare address gets its own."""
    address = push.mesh.policy_server
    host, _, port = address.rpartition(":")
    service = push.services.get(host)
    if service is not None and port.isdigit() and any(p.number == int(port) for p in service.ports):
        return names.outbound_cluster(int(port), "", host), None
    return POLICY_CLUSTER, address_cluster(POLICY_CLUSTER, address, push.mesh.connect_timeout_s, http2=True)


def _http_check_server(push: PushContext) -> tuple[str, int] | None:
    """(host, port) of the policy service's checks over HTTP: the `http-check` port of the
    registry service `mixerCheckServer` names, if it has one."""
    host = push.mesh.policy_server.rpartition(":")[0]
    service = push.services.get(host)
    if service is None:
        return None
    port = next((port.number for port in service.ports if port.name == CHECK_HTTP_PORT_NAME), None)
    return None if port is None else (host, port)


def _denials_reach_envoy_over_http(rule: Rule) -> bool:
    """Whether every denial the rule's check handlers can answer survives HTTP: Envoy takes
    a 5xx from an HTTP authorizer for a failure to check, and would apply the failure policy
    (perhaps allowing) where Mixer denied.  A denier answering a 5xx status, and a list
    checker whose provider may be unreachable (UNAVAILABLE, 503), keep gRPC."""
    for action in rule.actions:
        handler = action.handler
        if handler.adapter == "denier":
            code = (handler.params.get("status") or {}).get("code", DENIER_DEFAULT_CODE)
            if not isinstance(code, int) or grpc_code_to_http(code) >= 500:
                return False
        elif handler.adapter == "listchecker" and handler.params.get("providerUrl"):
            return False
    return True


def _http_check(proxy: Proxy, host: str, port: int) -> ext_authz_pb2.ExtAuthz:
    """A check over HTTP/1.1: the request's headers, and what the gRPC check carries beyond
    them in headers Envoy adds (`libs.mixer`'s CHECK_*), which no client can forge: Envoy
    forwards none of a client's headers under their prefix."""
    added = {**CHECK_FORMATTERS, CHECK_WORKLOAD_HEADER: f"{proxy.workload_name}.{proxy.namespace}",
             CHECK_LABELS_HEADER: json.dumps(proxy.label_map, sort_keys=True).replace("%", "%%")}
    service = ext_authz_pb2.HttpService(
        server_uri=http_uri_pb2.HttpUri(uri=f"http://{host}:{port}", cluster=names.outbound_cluster(port, "", host),
                                        timeout=duration(TIMEOUT_S)),
        authorization_request=ext_authz_pb2.AuthorizationRequest(
            headers_to_add=[base_pb2.HeaderValue(key=key, value=value) for key, value in added.items()]))
    every = string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".*"))
    return ext_authz_pb2.ExtAuthz(
        http_service=service, allowed_headers=string_pb2.ListStringMatcher(patterns=[every]),
        disallowed_headers=string_pb2.ListStringMatcher(patterns=[string_pb2.StringMatcher(
            prefix=CHECK_HEADER_PREFIX)]))


def _grpc(cluster: str, timeout_s: float) -> grpc_service_pb2.GrpcService:
    return grpc_service_pb2.GrpcService(envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=cluster),
                                        timeout=duration(timeout_s))


def _clause_header(attribute: str) -> str | None:
    """The request header a QuotaSpec clause's attribute is, if Envoy can match it."""
    if attribute in PSEUDO_HEADERS:
        return PSEUDO_HEADERS[attribute]
    found = re.fullmatch(r'request\.headers\[\s*"?([^"\]]+)"?\s*\]', attribute)
    return found.group(1).lower() if found else None


def _header_matcher(header: str, kind: str, value: str) -> rc.HeaderMatcher:
    matcher = string_pb2.StringMatcher()
    if kind == "regex":
        matcher.safe_regex.regex = value
    elif kind == "prefix":
        matcher.prefix = value
    else:
        matcher.exact = value
    return rc.HeaderMatcher(name=header, string_match=matcher)


def _rate_limits(charge: QuotaCharge, workload: str, headers: set[str], warnings: list[str]) -> list[rc.RateLimit]:
    """The rate limits that send the charge's descriptor: one, or one per alternative of the
    QuotaSpec rule's match (Envoy sends none for a request whose clauses do not all hold)."""
    base = rc.RateLimit()
    for key, value in ((QUOTA_KEY, charge.quota), (CHARGE_KEY, str(charge.charge)), (DESTINATION_KEY, workload)):
        base.actions.add().generic_key.CopyFrom(rc.RateLimit.Action.GenericKey(descriptor_key=key,
                                                                                 descriptor_value=value))
    base.actions.add().remote_address.SetInParent()
    for header in sorted(headers):
        base.actions.add().request_headers.CopyFrom(rc.RateLimit.Action.RequestHeaders(
            header_name=header, descriptor_key=header_key(header), skip_if_absent=True))
    if not charge.matches:
        return [base]
    limits = []
    for alternative in charge.matches:
        limit = rc.RateLimit()
        limit.CopyFrom(base)
        for attribute, kind, value in alternative:
            matched = _clause_header(attribute)
            if matched is None:
                warnings.append(f"QuotaSpec clause on {attribute!r} (quota {charge.quota}): Envoy can only match "
                                "request.path, request.method, request.host and request.headers[...]; this "
                                "alternative never charges")
                break
            limit.actions.add().header_value_match.CopyFrom(rc.RateLimit.Action.HeaderValueMatch(
                descriptor_key="quota.match", descriptor_value=attribute,
                expect_match=wrappers_pb2.BoolValue(value=True), headers=[_header_matcher(matched, kind, value)]))
        else:
            limits.append(limit)
    return limits


def _headers_read(config: MixerConfig, quota: str, warnings: list[str]) -> set[str]:
    """The request headers (and pseudo-headers) the quota's dimensions, and the matches of
    the rules that allocate it, read: the policy service needs them in the descriptor."""
    found: set[str] = set()
    for rule in config.quota_rules():
        instances = [i for action in rule.actions for i in action.instances if i.short_name == quota]
        if not instances:
            continue
        texts = [text for i in instances for text in (i.params.get("dimensions") or {}).values()]
        if rule.match is not None:
            texts.append(rule.match.text)
        for text in texts:
            for name in parse(text).referenced():
                if name.startswith('request.headers["') and name.endswith('"]'):
                    found.add(name[len('request.headers["'):-2].lower())
                elif name in PSEUDO_HEADERS:
                    found.add(PSEUDO_HEADERS[name])
                elif name == "request.headers":
                    warnings.append(f"quota {quota}: an expression reads request.headers whole; only headers "
                                    "named by a constant key reach the policy service")
    return found


def _annotation(proxy: Proxy) -> str:
    return str((proxy.metadata.get("ANNOTATIONS") or {}).get(CHECK_ANNOTATION, "enable"))


def variant(proxy: Proxy, push: PushContext) -> tuple[str, str]:
    """What the filters read of a proxy beyond its namespace and labels (proxies alike in
    those share them): its check annotation, and its workload name when Mixer rules or
    quotas exist (checks and quotas name the workload)."""
    mixer = push.derived("mixer-configured", lambda: any(push.config.of_kind(kind) for kind in ("rule",
                                                                                              "QuotaSpecBinding")))
    return _annotation(proxy), proxy.workload_name if mixer else ""


def build(proxy: Proxy, push: PushContext) -> PolicyFilters:
    out = PolicyFilters()
    mesh = push.mesh
    annotation = _annotation(proxy)
    if not mesh.policy_server or annotation == "disable":
        return out
    config = mixer_config(push)
    known, services = _destination(proxy, push)
    checked = any(config.may_apply(rule, known) for rule in config.check_rules())
    charges = config.charges(services)
    if not checked and not charges:
        return out
    fail_open = mesh.policy_check_fail_open or annotation == "allow-on-error"
    cluster, out.cluster = _policy_cluster(push)
    if out.cluster is None:
        out.reference = cluster
    if checked:
        http_server = _http_check_server(push)
        rules = [rule for rule in config.check_rules() if config.may_apply(rule, known)]
        if http_server is not None and all(_denials_reach_envoy_over_http(rule) for rule in rules):
            check = _http_check(proxy, *http_server)
        else:
            check = ext_authz_pb2.ExtAuthz(grpc_service=_grpc(cluster, TIMEOUT_S), include_peer_certificate=True)
            context = ext_authz_pb2.ExtAuthzPerRoute()
            context.check_settings.context_extensions.update({
                DESTINATION_KEY: f"{proxy.workload_name}.{proxy.namespace}",
                DESTINATION_LABELS_KEY: json.dumps(proxy.label_map, sort_keys=True)})
            out.per_route[CHECK_FILTER] = pack(context)
        check.failure_mode_allow = fail_open
        check.transport_api_version = config_source_pb2.V3
        check.status_on_error.code = STATUS_ON_ERROR
        out.http.append(hcm.HttpFilter(name=CHECK_FILTER, typed_config=pack(check)))
    if charges:
        quota = rate_limit_pb2.RateLimit(domain=QUOTA_DOMAIN, failure_mode_deny=not fail_open,
                                         timeout=duration(TIMEOUT_S),
                                         status_on_error=http_status_pb2.HttpStatus(code=STATUS_ON_ERROR))
        quota.rate_limit_service.grpc_service.CopyFrom(_grpc(cluster, TIMEOUT_S))
        quota.rate_limit_service.transport_api_version = config_source_pb2.V3
        out.http.append(hcm.HttpFilter(name=QUOTA_FILTER, typed_config=pack(quota)))
        workload = f"{proxy.workload_name}.{proxy.namespace}"
        for charge in charges:
            out.rate_limits.extend(_rate_limits(charge, workload, _headers_read(config, charge.quota, out.warnings),
                                                out.warnings))
    return out
