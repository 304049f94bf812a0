"""AuthorizationPolicy as Envoy filters on a proxy's inbound (or gateway) chains.

Istio's order, one filter per action, each evaluated in turn:
1. CUSTOM: an RBAC filter that never enforces, whose shadow rules mark requests matching a
   CUSTOM policy; the ext_authz filter after it runs only for marked requests
   (`filter_enabled_metadata`), so only those reach the external authorizer.
2. AUDIT: RBAC with action LOG (sets Envoy's access-log hint, denies nothing).
3. DENY: any matching rule denies.
4. ALLOW: once any ALLOW policy applies, a request must match one of its rules; an ALLOW
   policy without rules (`spec: {}`) matches nothing, so it denies everything.
Dry-run policies (`istio.io/dry-run: "true"`) sit beside their action's rules as shadow
rules: counted in the filter's stats and recorded in dynamic metadata, never enforced.

HTTP chains get `envoy.filters.http.rbac`, TCP chains `envoy.filters.network.rbac` (stat
prefix `tcp.`), built from the same policies by `authz_rules`.  A CUSTOM policy whose
provider is missing or unusable fails closed: its rules deny.

Where HTTP policies live: the AUDIT, DENY and ALLOW filters are on every inbound and
gateway HTTP chain, policy or not, with no rules of their own; the rules travel in the
route configuration (`typed_per_filter_config`), so a policy change is an RDS update that
applies from the very next request, on connections already open.  Rules in the listener
would take effect only on new connections: Envoy serves each open connection's next
request with the old filter chain while it drains it.  CUSTOM's filters (and the JWT
filter) name a provider and stay in the listener; TCP has no routes, and Envoy closes the
connections of a replaced TCP chain once it drained.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2, http_uri_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2 as http_ext_authz
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac
from envoy.extensions.filters.network.ext_authz.v3 import ext_authz_pb2 as network_ext_authz
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac
from envoy.type.matcher.v3 import metadata_pb2, string_pb2, value_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf import any_pb2

from libs.config import Resource
from libs.envoy import RBAC_HTTP, RBAC_NETWORK, duration, pack
from services.pilot.model.mesh import ExtAuthzProvider
from services.pilot.model.policies import is_dry_run, policies_for
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import authz_matchers as m
from services.pilot.networking import names
from services.pilot.networking.authz_rules import HttpOnly, RuleContext, rule_policy

EXT_AUTHZ_HTTP = "envoy.filters.http.ext_authz"
EXT_AUTHZ_NETWORK = "envoy.filters.network.ext_authz"
TCP_STAT_PREFIX = "tcp."
DRY_RUN_PREFIX = {"ALLOW": "istio_dry_run_allow_", "DENY": "istio_dry_run_deny_"}
EXT_AUTHZ_SHADOW_PREFIX = "istio_ext_authz_"
EXT_AUTHZ_POLICY_PREFIX = "istio-ext-authz-"
ACTIONS = ("CUSTOM", "AUDIT", "DENY", "ALLOW")
_RBAC_ACTION = {"ALLOW": rbac_pb2.RBAC.ALLOW, "DENY": rbac_pb2.RBAC.DENY, "AUDIT": rbac_pb2.RBAC.LOG,
                "CUSTOM": rbac_pb2.RBAC.ALLOW}


def policy_name(policy: Resource, index: int) -> str:
    """Istio's RBAC policy name, which `mizzenctl x authz check` and access logs show."""
    return f"ns[{policy.namespace}]-policy[{policy.name}]-rule[{index}]"


# The always-present HTTP filters whose rules come per route configuration, by action.
ROUTE_FILTERS = {"AUDIT": "envoy.filters.http.rbac.audit", "DENY": "envoy.filters.http.rbac.deny",
                 "ALLOW": "envoy.filters.http.rbac.allow"}


@dataclass
class AuthzFilters:
    """What one proxy's chains carry for its AuthorizationPolicies."""

    # Listener-level HTTP filters: CUSTOM's, then the per-route ones of ROUTE_FILTERS.
    http: list[hcm.HttpFilter] = field(default_factory=list)
    # Per route configuration: filter name -> RBACPerRoute, for the actions that have policies.
    per_route: dict[str, any_pb2.Any] = field(default_factory=dict)
    network: list[listener_components_pb2.Filter] = field(default_factory=list)
    # Clusters the ext_authz filters call (each must be in the proxy's CDS).
    clusters: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    # (action, `name.namespace`) of every policy that applies, in enforcement order.
    applied: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Grouped:
    enforced: dict[str, list[Resource]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    dry_run: dict[str, list[Resource]] = field(default_factory=lambda: {"ALLOW": [], "DENY": []})


def _group(policies: Iterable[Resource]) -> _Grouped:
    grouped = _Grouped()
    for policy in policies:
        action = policy.spec.get("action", "ALLOW")
        (grouped.dry_run if is_dry_run(policy) and action in grouped.dry_run else grouped.enforced)[action].append(
            policy)
    return grouped


def _rbac(policies: list[Resource], action: str, *, tcp: bool, prefix: str, warnings: list[str]) -> rbac_pb2.RBAC:
    rules = rbac_pb2.RBAC(action=_RBAC_ACTION[action])
    for policy in policies:
        for index, rule in enumerate(policy.spec.get("rules", [])):
            context = RuleContext(tcp=tcp, strict=action == "ALLOW", namespace=policy.namespace)
            try:
                built = rule_policy(rule, context)
            except HttpOnly as exc:
                warnings.append(f"AuthorizationPolicy {policy.namespace}/{policy.name} spec.rules[{index}]: {exc}, "
                                "so on TCP ports this ALLOW rule never matches")
                continue
            rules.policies[prefix + policy_name(policy, index)].CopyFrom(built)
    return rules


def _http_rbac(config: http_rbac.RBAC) -> hcm.HttpFilter:
    return hcm.HttpFilter(name=RBAC_HTTP, typed_config=pack(config))


def _network_rbac(config: network_rbac.RBAC) -> listener_components_pb2.Filter:
    config.stat_prefix = TCP_STAT_PREFIX
    return listener_components_pb2.Filter(name=RBAC_NETWORK, typed_config=pack(config))


def _action_filter(action: str, grouped: _Grouped, *, tcp: bool, warnings: list[str]
                   ) -> http_rbac.RBAC | network_rbac.RBAC | None:
    enforced = grouped.enforced[action]
    shadow = grouped.dry_run.get(action, [])
    if not enforced and not shadow:
        return None
    config = network_rbac.RBAC() if tcp else http_rbac.RBAC()
    if enforced:
        config.rules.CopyFrom(_rbac(enforced, action, tcp=tcp, prefix="", warnings=warnings))
    if shadow:
        config.shadow_rules.CopyFrom(_rbac(shadow, action, tcp=tcp, prefix="", warnings=warnings))
        config.shadow_rules_stat_prefix = DRY_RUN_PREFIX[action]
    return config


def _enabled_when_marked(rbac_filter: str) -> metadata_pb2.MetadataMatcher:
    """True for requests the CUSTOM shadow rules matched."""
    return m.metadata(rbac_filter, [f"{EXT_AUTHZ_SHADOW_PREFIX}shadow_effective_policy_id"],
                      value_pb2.ValueMatcher(string_match=string_pb2.StringMatcher(prefix=EXT_AUTHZ_POLICY_PREFIX)))


def _grpc_service(provider: ExtAuthzProvider, cluster: str) -> grpc_service_pb2.GrpcService:
    return grpc_service_pb2.GrpcService(envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=cluster),
                                        timeout=duration(provider.timeout_s))


def _exact_headers(headers: Iterable[str]) -> string_pb2.ListStringMatcher:
    return string_pb2.ListStringMatcher(patterns=[string_pb2.StringMatcher(exact=h, ignore_case=True)
                                                  for h in headers])


def _http_ext_authz(provider: ExtAuthzProvider, cluster: str) -> hcm.HttpFilter:
    config = http_ext_authz.ExtAuthz(
        transport_api_version=config_source_pb2.V3, failure_mode_allow=provider.fail_open,
        status_on_error=http_status_pb2.HttpStatus(code=provider.status_on_error),
        filter_enabled_metadata=_enabled_when_marked(RBAC_HTTP), include_peer_certificate=True)
    if provider.request_body is not None:
        max_bytes, partial, as_bytes = provider.request_body
        config.with_request_body.max_request_bytes = max_bytes
        config.with_request_body.allow_partial_message = partial
        config.with_request_body.pack_as_bytes = as_bytes
    if provider.include_request_headers:
        config.allowed_headers.CopyFrom(_exact_headers(provider.include_request_headers))
    if provider.grpc:
        config.grpc_service.CopyFrom(_grpc_service(provider, cluster))
    else:
        service = config.http_service
        service.server_uri.CopyFrom(http_uri_pb2.HttpUri(uri=f"http://{provider.host}:{provider.port}",
                                                         cluster=cluster, timeout=duration(provider.timeout_s)))
        service.path_prefix = provider.path_prefix
        for name, value in provider.include_additional_headers:
            service.authorization_request.headers_to_add.append(base_pb2.HeaderValue(key=name, value=value))
        response = service.authorization_response
        if provider.headers_to_upstream_on_allow:
            response.allowed_upstream_headers.CopyFrom(_exact_headers(provider.headers_to_upstream_on_allow))
        if provider.headers_to_downstream_on_deny:
            response.allowed_client_headers.CopyFrom(_exact_headers(provider.headers_to_downstream_on_deny))
        if provider.headers_to_downstream_on_allow:
            response.allowed_client_headers_on_success.CopyFrom(
                _exact_headers(provider.headers_to_downstream_on_allow))
    return hcm.HttpFilter(name=EXT_AUTHZ_HTTP, typed_config=pack(config))


def _network_ext_authz(provider: ExtAuthzProvider, cluster: str) -> listener_components_pb2.Filter:
    config = network_ext_authz.ExtAuthz(
        stat_prefix=TCP_STAT_PREFIX, grpc_service=_grpc_service(provider, cluster),
        failure_mode_allow=provider.fail_open, transport_api_version=config_source_pb2.V3,
        filter_enabled_metadata=_enabled_when_marked(RBAC_NETWORK), include_peer_certificate=True)
    return listener_components_pb2.Filter(name=EXT_AUTHZ_NETWORK, typed_config=pack(config))


def _custom_provider(policies: list[Resource], push: PushContext, warnings: list[str]
                     ) -> tuple[ExtAuthzProvider, str] | None:
    """The one provider the CUSTOM policies name and the cluster that reaches it, or None
    (with the reason in `warnings`) when they must fail closed."""
    names_used = sorted({p.spec.get("provider", {}).get("name", "") for p in policies})
    refs = ", ".join(f"{p.namespace}/{p.name}" for p in policies)
    if len(names_used) > 1:
        warnings.append(f"AuthorizationPolicy {refs}: a workload can use only one CUSTOM provider, not "
                        f"{', '.join(names_used)}; their rules deny instead")
        return None
    provider = push.mesh.ext_authz_provider(names_used[0])
    if provider is None:
        warnings.append(f"AuthorizationPolicy {refs}: provider {names_used[0]!r} is not an envoyExtAuthzGrpc or "
                        "envoyExtAuthzHttp extension provider in the mesh config; its rules deny instead")
        return None
    service = push.services.get(provider.host)
    if service is None or not any(p.number == provider.port for p in service.ports):
        warnings.append(f"extension provider {provider.name!r}: service {provider.service} port {provider.port} "
                        "is not in the registry; CUSTOM rules using it deny instead")
        return None
    port = next(p for p in service.ports if p.number == provider.port)
    if provider.grpc and not port.protocol.is_http2:
        warnings.append(f"extension provider {provider.name!r}: port {provider.port} of {provider.host} is "
                        f"{port.protocol.value}, but envoyExtAuthzGrpc needs a gRPC (HTTP/2) port")
    return provider, names.outbound_cluster(provider.port, "", provider.host)


def _spiffe_written(policies: Iterable[Resource]) -> Iterator[str]:
    """Principals written with `spiffe://`, which pilot adds itself (as Istio does), so they
    can never match: say where, since the policy is valid and silently ineffective."""
    for policy in policies:
        for index, rule in enumerate(policy.spec.get("rules", [])):
            where = f"AuthorizationPolicy {policy.namespace}/{policy.name} spec.rules[{index}]"
            for at, entry in enumerate(rule.get("from", [])):
                source = entry.get("source", {})
                for field_name in ("principals", "notPrincipals"):
                    for value in source.get(field_name, []):
                        if value.startswith(m.SPIFFE_PREFIX):
                            yield f"{where}.from[{at}].source.{field_name}: {value!r}"
            for at, condition in enumerate(rule.get("when", [])):
                if condition.get("key") == "source.principal":
                    for value in [*condition.get("values", []), *condition.get("notValues", [])]:
                        if value.startswith(m.SPIFFE_PREFIX):
                            yield f"{where}.when[{at}]: {value!r}"


def build(proxy: Proxy, push: PushContext) -> AuthzFilters:
    out = AuthzFilters()
    applied = policies_for("AuthorizationPolicy", proxy, push)
    out.warnings.extend(f"{found} starts with spiffe://, which Istio adds itself (write trust-domain/ns/NS/sa/SA), "
                        "so it never matches" for found in _spiffe_written(applied))
    grouped = _group(applied)
    for action in ACTIONS:
        for policy in grouped.enforced[action] + grouped.dry_run.get(action, []):
            label = f"{action} (dry-run)" if is_dry_run(policy) and action in grouped.dry_run else action
            out.applied.append((label, f"{policy.name}.{policy.namespace}"))
    custom = grouped.enforced["CUSTOM"]
    if custom:
        chosen = _custom_provider(custom, push, out.warnings)
        if chosen is None:
            grouped.enforced["DENY"] = custom + grouped.enforced["DENY"]
        else:
            provider, cluster = chosen
            out.clusters.add(cluster)
            shadow = _rbac(custom, "CUSTOM", tcp=False, prefix=EXT_AUTHZ_POLICY_PREFIX, warnings=out.warnings)
            out.http.append(_http_rbac(http_rbac.RBAC(shadow_rules=shadow,
                                                      shadow_rules_stat_prefix=EXT_AUTHZ_SHADOW_PREFIX)))
            out.http.append(_http_ext_authz(provider, cluster))
            if provider.grpc:
                tcp_shadow = _rbac(custom, "CUSTOM", tcp=True, prefix=EXT_AUTHZ_POLICY_PREFIX, warnings=[])
                out.network.append(_network_rbac(network_rbac.RBAC(shadow_rules=tcp_shadow,
                                                                   shadow_rules_stat_prefix=EXT_AUTHZ_SHADOW_PREFIX)))
                out.network.append(_network_ext_authz(provider, cluster))
    for action in ("AUDIT", "DENY", "ALLOW"):
        # No rules of its own: it enforces what the route configuration carries, if anything.
        base = http_rbac.RBAC(shadow_rules_stat_prefix=DRY_RUN_PREFIX.get(action, ""))
        out.http.append(hcm.HttpFilter(name=ROUTE_FILTERS[action], typed_config=pack(base)))
        http_config = _action_filter(action, grouped, tcp=False, warnings=[])
        if http_config is not None:
            out.per_route[ROUTE_FILTERS[action]] = pack(http_rbac.RBACPerRoute(rbac=http_config))
        tcp_config = _action_filter(action, grouped, tcp=True, warnings=out.warnings)
        if tcp_config is not None:
            out.network.append(_network_rbac(tcp_config))
    return out
