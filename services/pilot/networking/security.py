"""A proxy's security filters: RequestAuthentication's JWT filter, then AuthorizationPolicy's
RBAC and ext_authz filters, for every HTTP chain (and the RBAC ones for every TCP chain)
of its inbound side, or of every server when it is a gateway.

Built once per push for all proxies of one namespace with the same labels: only those
select policies.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import any_pb2

from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import authz, jwt_authn, policy_checks


@dataclass(frozen=True)
class ProxySecurity:
    # In order, before the HTTP connection manager's own filters (fault, CORS, router).
    http_filters: tuple[hcm.HttpFilter, ...] = ()
    # `typed_per_filter_config` of every route configuration those HTTP chains use.
    per_route: tuple[tuple[str, any_pb2.Any], ...] = ()
    # Rate limits (the policy service's quotas) on every virtual host of those configurations.
    rate_limits: tuple[rc.RateLimit, ...] = ()
    # In order, before a TCP chain's tcp_proxy.
    network_filters: tuple[listener_components_pb2.Filter, ...] = ()
    # Clusters built for the filters (JWKS hosts outside the registry).
    clusters: tuple[cluster_pb2.Cluster, ...] = ()
    # Every cluster the filters call: it must be in the proxy's CDS before them.
    references: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()
    # (action, `name.namespace`) of the AuthorizationPolicies that apply, in enforcement order.
    applied: tuple[tuple[str, str], ...] = ()


NO_SECURITY = ProxySecurity()


def guard_routes(config: route_pb2.RouteConfiguration, security: ProxySecurity) -> route_pb2.RouteConfiguration:
    """Put the policies' rules on a route configuration of a guarded HTTP chain."""
    for name, per_route in security.per_route:
        config.typed_per_filter_config[name].CopyFrom(per_route)
    if security.rate_limits:
        for vhost in config.virtual_hosts:
            vhost.rate_limits.extend(security.rate_limits)
    return config


def build(proxy: Proxy, push: PushContext) -> ProxySecurity:
    token = jwt_authn.build(proxy, push)
    policy = authz.build(proxy, push)
    checks = policy_checks.build(proxy, push)
    # Istio 1.0's order: authentication, authorization, then Mixer's check and quota.
    http = ([token.filter] if token.filter is not None else []) + policy.http + checks.http
    clusters = list(token.clusters)
    references = set(token.references | policy.clusters)
    if checks.cluster is not None:
        clusters.append(checks.cluster)
    if checks.reference:
        references.add(checks.reference)
    return ProxySecurity(
        http_filters=tuple(http), per_route=tuple(sorted({**policy.per_route, **checks.per_route}.items())),
        rate_limits=tuple(checks.rate_limits), network_filters=tuple(policy.network), clusters=tuple(clusters),
        references=frozenset(references), warnings=tuple(token.warnings + policy.warnings + checks.warnings),
        applied=tuple(policy.applied))
