"""One proxy's complete configuration, checked for consistency before it is served."""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf.message import Message

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import ProxyScope
from services.pilot.networking import clusters as cluster_builder
from services.pilot.networking import gateway, mtls, sidecar_inbound, sidecar_outbound


class InconsistentConfig(Exception):
    """Generated config names something it does not define; serving it would break traffic."""


@dataclass(frozen=True)
class ProxyConfig:
    version: str
    # type URL -> resource name -> resource
    resources: dict[str, dict[str, Message]]
    # listener or route configuration name -> clusters it routes to
    references: dict[str, frozenset[str]]
    warnings: tuple[str, ...]

    @property
    def eds_clusters(self) -> frozenset[str]:
        return frozenset(self.resources[ENDPOINT_TYPE])

    @property
    def route_names(self) -> frozenset[str]:
        """RDS names the listeners subscribe to."""
        return frozenset(_rds_names(self.resources[LISTENER_TYPE]))


def _rds_names(listeners: dict[str, Message]) -> set[str]:
    found: set[str] = set()
    for listener in listeners.values():
        for chain in [*listener.filter_chains, listener.default_filter_chain]:
            for network_filter in chain.filters:
                if network_filter.typed_config.Is(hcm.HttpConnectionManager.DESCRIPTOR):
                    manager = hcm.HttpConnectionManager()
                    network_filter.typed_config.Unpack(manager)
                    if manager.HasField("rds"):
                        found.add(manager.rds.route_config_name)
    return found


def check_consistency(config: ProxyConfig) -> None:
    """go-control-plane's rule: every EDS cluster has endpoints, every RDS name a route
    configuration, every routed-to cluster exists."""
    clusters = config.resources[CLUSTER_TYPE]
    endpoints = config.resources[ENDPOINT_TYPE]
    for name, cluster in clusters.items():
        if cluster.type == cluster_pb2.Cluster.EDS and name not in endpoints:
            raise InconsistentConfig(f"EDS cluster {name} has no load assignment")
    for name in endpoints:
        if name not in clusters:
            raise InconsistentConfig(f"load assignment {name} has no cluster")
    for name in _rds_names(config.resources[LISTENER_TYPE]):
        if name not in config.resources[ROUTE_TYPE]:
            raise InconsistentConfig(f"a listener names route configuration {name}, which is not generated")
    for owner, referenced in config.references.items():
        missing = sorted(referenced - clusters.keys())
        if missing:
            raise InconsistentConfig(f"{owner} routes to undefined cluster(s) {', '.join(missing)}")


def generate(proxy: Proxy, push: PushContext) -> ProxyConfig:
    clusters: dict[str, Message] = {}
    endpoints: dict[str, Message] = {}
    scope = ProxyScope.build(proxy, push)
    # Gateways see every service; a sidecar what exportTo and its Sidecar resource allow.
    services = scope.services() if proxy.type == NodeType.SIDECAR else sorted(
        push.services.values(), key=lambda s: s.hostname)
    for built in cluster_builder.outbound_clusters(push, services):
        if proxy.identity:
            mtls.secure_cluster(built.cluster, push)
        clusters[built.cluster.name] = built.cluster
        if built.cluster.type == cluster_pb2.Cluster.EDS and built.assignment is not None:
            endpoints[built.cluster.name] = built.assignment
    for special in (cluster_builder.blackhole_cluster(push), cluster_builder.passthrough_cluster(push)):
        clusters[special.name] = special
    listeners: dict[str, Message] = {}
    routes: dict[str, Message] = {}
    references: dict[str, frozenset[str]] = {}
    warnings: list[str] = []
    if proxy.type == NodeType.ROUTER:
        out = gateway.build(proxy, push)
        listeners.update((listener.name, listener) for listener in out.listeners)
        routes.update((route.name, route) for route in out.routes)
        references.update((name, frozenset(refs)) for name, refs in out.references.items())
        warnings.extend(out.warnings)
    else:
        inbound = sidecar_inbound.build(proxy, push, scope)
        clusters.update((c.name, c) for c in inbound.clusters)
        listeners.update((listener.name, listener) for listener in inbound.listeners)
        outbound = sidecar_outbound.build(scope)
        listeners.update((listener.name, listener) for listener in outbound.listeners)
        routes.update((route.name, route) for route in outbound.routes)
        references.update((name, frozenset(refs)) for name, refs in outbound.references.items())
        warnings.extend(outbound.warnings)
    config = ProxyConfig(
        version=push.version,
        resources={CLUSTER_TYPE: clusters, ENDPOINT_TYPE: endpoints, LISTENER_TYPE: listeners, ROUTE_TYPE: routes},
        references=references,
        warnings=tuple(warnings),
    )
    check_consistency(config)
    return config
