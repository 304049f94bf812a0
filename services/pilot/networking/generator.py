"""One proxy's complete configuration, checked for consistency before it is served."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf.message import Message

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.errors import InconsistentConfig
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import ProxyScope
from services.pilot.model.services import Service, ServicePort
from services.pilot.model.telemetry import TelemetryView
from services.pilot.networking import clusters as cluster_builder
from services.pilot.networking import (
    gateway,
    grpc_proxyless,
    grpc_proxyless_clusters,
    mtls,
    names,
    observability,
    security,
    sidecar_inbound,
    sidecar_outbound,
)
from services.pilot.networking.memo import TranslationMemo
from services.pilot.networking.shared_parts import SharedParts

Part = dict[str, Message]


@dataclass(frozen=True)
class EndpointReads:
    """What a proxy's own side read of endpoints, so a later push can tell whether it would
    read the same: its workload's instances (`PushContext.endpoints_at`; None where nothing
    reads them, as on a gateway), and the endpoints of each (service, port) its security
    clusters were built from.  A routing-only push keeps a sidecar's own side by it, and an
    endpoint-only push carries a snapshot over by it (`SnapshotCache`)."""

    own: Sequence[Any] | None = None
    hosts: tuple[tuple[tuple[str, int], Any], ...] = ()

    def same_in(self, push: PushContext, address: str) -> bool:
        """Whether `push` has what this side read, for a proxy at `address`."""
        return (self.own is None or self.own == push.endpoints_at(address)) and all(
            push.endpoints.get(key, ()) == found for key, found in self.hosts)


@dataclass(frozen=True)
class ProxyConfig:
    """A proxy's resources, per type as a tuple of parts: shared parts (the same dict
    objects for every proxy with the same inputs) and the proxy's own."""

    version: str
    parts: dict[str, tuple[Part, ...]]
    # Per part: listener or route configuration name -> clusters it routes to.
    reference_parts: tuple[dict[str, frozenset[str]], ...]
    warnings: tuple[str, ...]
    # What Envoy subscribes to once it applied this config's CDS and LDS.
    eds_clusters: frozenset[str] = frozenset()
    route_names: frozenset[str] = frozenset()
    # What its own side read of endpoints: an endpoint change to any of it changes more
    # than load assignments.
    reads: EndpointReads = EndpointReads()

    @classmethod
    def from_resources(cls, version: str, resources: dict[str, Part],
                       references: dict[str, frozenset[str]] | None = None,
                       warnings: tuple[str, ...] = ()) -> ProxyConfig:
        """One part per type (tests and simple callers)."""
        return cls(version, {t: (part,) for t, part in resources.items()}, (references or {},), warnings,
                   eds_clusters=frozenset(resources.get(ENDPOINT_TYPE, {})),
                   route_names=_rds_names(resources.get(LISTENER_TYPE, {})))

    @cached_property
    def resources(self) -> dict[str, Part]:
        merged: dict[str, Part] = {}
        for type_url, parts in self.parts.items():
            combined: Part = {}
            for part in parts:
                combined.update(part)
            merged[type_url] = combined
        return merged

    @cached_property
    def references(self) -> dict[str, frozenset[str]]:
        merged: dict[str, frozenset[str]] = {}
        for part in self.reference_parts:
            merged.update(part)
        return merged


def _rds_names(listeners: Part) -> frozenset[str]:
    found: set[str] = set()
    for listener in listeners.values():
        for chain in [*listener.filter_chains, listener.default_filter_chain]:
            for network_filter in chain.filters:
                if network_filter.typed_config.Is(hcm.HttpConnectionManager.DESCRIPTOR):
                    manager = hcm.HttpConnectionManager()
                    network_filter.typed_config.Unpack(manager)
                    if manager.HasField("rds"):
                        found.add(manager.rds.route_config_name)
    return frozenset(found)


def _eds_names(clusters: Part) -> frozenset[str]:
    return frozenset(name for name, c in clusters.items() if c.type == cluster_pb2.Cluster.EDS)


def _missing(memo: TranslationMemo, what: str, subject: object, names: frozenset[str],
             parts: tuple[Part, ...]) -> frozenset[str]:
    """The `names` (derived from `subject`) that no part has.  Whether a shared subject is
    wholly within one shared part is asked once per push, so a thousand proxies with their
    own small parts beside the shared ones cost a thousand lookups, not set unions."""
    for part in parts:
        # Both objects are held with the answer, so neither id can be reused while it lives.
        held, within = memo.of(subject, f"{what}:{id(part)}", lambda p=part: (p, names <= p.keys()))  # type: ignore[misc]
        if held is part and within:
            return frozenset()
    return frozenset(name for name in names if not any(name in part for part in parts))


def check_consistency(config: ProxyConfig, memo: TranslationMemo) -> None:
    """go-control-plane's rule: every EDS cluster has endpoints, every RDS name a route
    configuration, every routed-to cluster exists.  Facts about shared parts are
    computed once per push (memo), so checking a thousand proxies stays cheap."""
    clusters, endpoints, routes = (config.parts[t] for t in (CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE))
    for part in clusters:
        eds = memo.of(part, "eds-names", lambda p=part: _eds_names(p))  # type: ignore[misc]
        missing = _missing(memo, "eds-in", part, eds, endpoints)
        if missing:
            raise InconsistentConfig(f"EDS cluster {sorted(missing)[0]} has no load assignment")
    for part in endpoints:
        orphans = _missing(memo, "assignments-in", part, memo.of(part, "names", lambda p=part: frozenset(p)),  # type: ignore[misc]
                           clusters)
        if orphans:
            raise InconsistentConfig(f"load assignment {sorted(orphans)[0]} has no cluster")
    missing_routes = frozenset(name for name in config.route_names if not any(name in part for part in routes))
    if missing_routes:
        raise InconsistentConfig(f"a listener names route configuration {sorted(missing_routes)[0]}, "
                                 "which is not generated")
    for references in config.reference_parts:
        used = memo.of(references, "used", lambda r=references: frozenset().union(*r.values()))  # type: ignore[misc]
        if not _missing(memo, "used-in", references, used, clusters):
            continue
        for owner, referenced in references.items():
            dangling = _missing(memo, "owner-in", referenced, referenced, clusters)
            if dangling:
                raise InconsistentConfig(f"{owner} routes to undefined cluster(s) {', '.join(sorted(dangling))}")


def _cluster_key(push: PushContext, service: Service, port: ServicePort, subset: dict[str, Any] | None,
                 identity: bool, source: str) -> tuple[Any, ...]:
    """Everything a cluster (and its load assignment) is built from."""
    rule = push.destination_rule(service.hostname)
    return ("cluster", service, port, json.dumps(subset, sort_keys=True) if subset else "",
            rule.to_json() if rule else b"", identity, source, push.mesh,
            push.endpoints.get((service.hostname, port.number), ()))


def source_address(proxy: Proxy) -> str:
    """Where a proxy's connections to mesh services come from: in the local mesh's proxy
    mode every workload shares the host's loopback, and without a bind the kernel would
    answer 127.0.0.1 for all of them; bound, peers see which workload called (`source.ip`
    policies, telemetry's source labels), as they would across a network."""
    if proxy.interception == "NONE" and proxy.bind_address not in ("", "0.0.0.0", "::"):
        return proxy.bind_address
    return ""


def outbound_clusters(push: PushContext, services: list[Service], identity: bool,
                      memo: TranslationMemo, source: str = "") -> tuple[Part, Part]:
    """(clusters, load assignments) for `services`; each cluster reused from earlier pushes
    when none of its inputs changed.  `source`: the address mesh-internal connections
    leave from (see `source_address`)."""
    clusters: Part = {}
    endpoints: Part = {}
    for service in services:
        for built in _service_clusters(push, service, identity, memo, source):
            clusters[built.cluster.name] = built.cluster
            if built.cluster.type == cluster_pb2.Cluster.EDS and built.assignment is not None:
                endpoints[built.cluster.name] = built.assignment
    for special in (cluster_builder.blackhole_cluster(push), cluster_builder.passthrough_cluster(push),
                    *observability.clusters(push.mesh)):
        clusters[special.name] = special
    return clusters, endpoints


def outbound_clusters_after(push: PushContext, hosts: Iterable[str], part: tuple[Part, Part], identity: bool,
                            memo: TranslationMemo, source: str = "") -> tuple[Part, Part]:
    """`part`, an `outbound_clusters` result of a push that differed from `push` only in the
    endpoints of `hosts`, as `outbound_clusters` would build it for `push`: the clusters of
    those hosts it holds are built again, every other entry is kept as it is (a cluster
    reads its service's endpoints, never another's)."""
    old_clusters, old_endpoints = part
    clusters, endpoints = dict(old_clusters), dict(old_endpoints)
    for host in hosts:
        service = push.services.get(host)
        if service is None:
            continue
        for built in _service_clusters(push, service, identity, memo, source):
            name = built.cluster.name
            if name not in old_clusters:
                break  # not a service the part's proxies see
            clusters[name] = built.cluster
            endpoints.pop(name, None)
            if built.cluster.type == cluster_pb2.Cluster.EDS and built.assignment is not None:
                endpoints[name] = built.assignment
    return clusters, endpoints


def _service_clusters(push: PushContext, service: Service, identity: bool, memo: TranslationMemo,
                      source: str) -> Iterator[cluster_builder.OutboundCluster]:
    """A service's outbound clusters, one per port and subset."""
    rule = push.destination_rule(service.hostname)
    subsets: list[dict[str, Any] | None] = [None, *(rule.spec.get("subsets", []) if rule else [])]
    for port in service.ports:
        for subset in subsets:
            def build(port: ServicePort = port,
                      subset: dict[str, Any] | None = subset) -> cluster_builder.OutboundCluster:
                built = (cluster_builder.build_cluster(push, service, port) if subset is None else
                         cluster_builder.build_cluster(push, service, port, subset["name"],
                                                       subset.get("labels", {}), subset.get("trafficPolicy")))
                if identity:
                    mtls.secure_cluster(built.cluster, push)
                if source and not service.mesh_external:
                    built.cluster.upstream_bind_config.source_address.address = source
                    built.cluster.upstream_bind_config.source_address.port_value = 0
                return built

            yield memo.lasting(_cluster_key(push, service, port, subset, identity, source), build)


@dataclass(frozen=True)
class OwnParts:
    """What a proxy has beside the outbound config it shares: a sidecar's inbound side, and
    the clusters its security filters call.  No VirtualService reaches any of it, so a
    sidecar's is kept across pushes that changed only VirtualServices."""

    clusters: tuple[Part, ...] = ()
    listeners: tuple[Part, ...] = ()
    routes: tuple[Part, ...] = ()
    references: tuple[dict[str, frozenset[str]], ...] = ()
    warnings: tuple[str, ...] = ()
    # The route configurations its listeners ask for over RDS.
    route_names: frozenset[str] = frozenset()
    reads: EndpointReads = EndpointReads()


def generate(proxy: Proxy, push: PushContext, memo: TranslationMemo | None = None) -> ProxyConfig:
    """The proxy's config, assembled from the parts it shares with others (each taken from
    the `SharedParts` seam, which caches it) and its own."""
    parts = SharedParts(push, memo or TranslationMemo())
    scope = parts.scope(proxy)
    if proxy.proxyless:
        return _proxyless(scope, parts)
    shared_clusters, shared_endpoints = outbound_cluster_parts(proxy, parts)
    if proxy.type == NodeType.ROUTER:
        guard = parts.security(proxy)
        out = parts.gateway(proxy, lambda: _gateway_parts(proxy, push, guard, scope.telemetry))
        own = _guarded(proxy, push, guard, shared_clusters, OwnParts())
    else:
        own = parts.sidecar_own(proxy, lambda: _sidecar_own(proxy, scope, parts, shared_clusters),
                                lambda kept: kept.reads.same_in(push, proxy.ip))
        out = parts.sidecar_outbound(proxy, scope, lambda: _outbound_parts(scope, parts.memo))
    config = ProxyConfig(
        version=push.version,
        parts={CLUSTER_TYPE: (shared_clusters, *own.clusters), ENDPOINT_TYPE: (shared_endpoints,),
               LISTENER_TYPE: (*own.listeners, out[0]), ROUTE_TYPE: (out[1], *own.routes)},
        reference_parts=(*own.references, out[2]),
        warnings=(*out[3], *own.warnings),
        eds_clusters=parts.fact(shared_endpoints, "eds-set", frozenset),
        route_names=own.route_names | parts.fact(out[0], "rds-names", _rds_names),
        reads=own.reads,
    )
    check_consistency(config, parts.memo)
    return config


def _sidecar_own(proxy: Proxy, scope: ProxyScope, parts: SharedParts, shared_clusters: Part) -> OwnParts:
    guard = parts.security(proxy)
    inbound = sidecar_inbound.build(proxy, parts.push, scope, guard)
    listeners = {listener.name: listener for listener in inbound.listeners}
    routes = {route.name: route for route in inbound.routes}
    references = [{route.name: frozenset({route.name}) for route in inbound.routes}]
    if guard.references:
        references.append({name: guard.references for name in listeners})
    side = OwnParts(reads=EndpointReads(own=parts.push.endpoints_at(proxy.ip)),
                    clusters=({c.name: c for c in inbound.clusters},), listeners=(listeners,),
                    routes=(routes,) if routes else (), references=tuple(references),
                    route_names=_rds_names(listeners))
    return _guarded(proxy, parts.push, guard, shared_clusters, side)


def _guarded(proxy: Proxy, push: PushContext, guard: security.ProxySecurity, shared_clusters: Part,
             side: OwnParts) -> OwnParts:
    """`side` with the clusters its security filters call and their warnings."""
    clusters, reads = side.clusters, side.reads
    if guard.clusters or guard.references:
        own, keys = _security_clusters(proxy, push, guard, shared_clusters)
        clusters = (*clusters, own)
        reads = replace(reads, hosts=(*reads.hosts, *((key, push.endpoints.get(key, ())) for key in keys)))
    return replace(side, clusters=clusters, warnings=(*side.warnings, *guard.warnings), reads=reads)


def outbound_cluster_parts(proxy: Proxy, parts: SharedParts) -> tuple[Part, Part]:
    """The shared outbound clusters and load assignments `generate` gives an Envoy proxy."""
    source = source_address(proxy)
    return parts.outbound_clusters(proxy, source, lambda services: outbound_clusters(
        parts.push, services, proxy.identity, parts.memo, source))


def _proxyless(scope: ProxyScope, parts: SharedParts) -> ProxyConfig:
    """A gRPC library's xDS client: API listeners and what they lead to, nothing of Envoy's."""
    services = scope.services()
    clusters, endpoints, cluster_warnings = parts.proxyless_clusters(
        services, lambda: grpc_proxyless_clusters.clusters(parts.push, services, parts.memo))
    out = parts.proxyless_listeners(scope.proxy, lambda: grpc_proxyless.listeners_and_routes(scope, services))
    config = ProxyConfig(
        version=parts.push.version,
        parts={CLUSTER_TYPE: (clusters,), ENDPOINT_TYPE: (endpoints,), LISTENER_TYPE: (out.listeners,),
               ROUTE_TYPE: (out.routes,)},
        reference_parts=(out.references,),
        warnings=(*out.warnings, *cluster_warnings),
        eds_clusters=frozenset(endpoints),
        route_names=out.route_names,
    )
    check_consistency(config, parts.memo)
    return config


GeneratedParts = tuple[Part, Part, dict[str, frozenset[str]], tuple[str, ...]]


def _gateway_parts(proxy: Proxy, push: PushContext, guard: security.ProxySecurity,
                   view: TelemetryView) -> GeneratedParts:
    out = gateway.build(proxy, push, guard, view)
    references = {name: frozenset(refs) for name, refs in out.references.items()}
    if guard.references:
        references.update({listener.name: references.get(listener.name, frozenset()) | guard.references
                           for listener in out.listeners})
    return ({listener.name: listener for listener in out.listeners}, {route.name: route for route in out.routes},
            references, tuple(out.warnings))


def _security_clusters(proxy: Proxy, push: PushContext, guard: security.ProxySecurity,
                       shared: Part) -> tuple[Part, list[tuple[str, int]]]:
    """The clusters the security filters call that the shared outbound clusters lack: JWKS
    hosts outside the registry, and an external authorizer a Sidecar resource hides; and the
    (service, port)s whose endpoints they were built from (inline, and in their mTLS names),
    which an endpoint change must reach."""
    own: Part = {c.name: c for c in guard.clusters}
    read: list[tuple[str, int]] = []
    for name in sorted(guard.references - shared.keys() - own.keys()):
        parsed = names.parse_outbound_cluster(name)
        service = push.services.get(parsed[2]) if parsed else None
        port = next((p for p in service.ports if parsed and p.number == parsed[0]), None) if service else None
        if service is None or port is None:
            continue
        built = cluster_builder.build_cluster(push, service, port)
        read.append((service.hostname, port.number))
        if proxy.identity:
            mtls.secure_cluster(built.cluster, push)
        if built.cluster.type == cluster_pb2.Cluster.EDS and built.assignment is not None:
            # Its endpoints would need an EDS part of their own; serve them inline instead.
            built.cluster.type = cluster_pb2.Cluster.STATIC
            built.cluster.ClearField("eds_cluster_config")
            built.cluster.load_assignment.CopyFrom(built.assignment)
        own[name] = built.cluster
    return own, read


def _outbound_parts(scope: ProxyScope, memo: TranslationMemo) -> GeneratedParts:
    out = sidecar_outbound.build(scope, memo)
    return ({listener.name: listener for listener in out.listeners}, {route.name: route for route in out.routes},
            {name: frozenset(refs) for name, refs in out.references.items()}, tuple(out.warnings))
