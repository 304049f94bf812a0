"""Inbound: traffic for the proxy's own workload, to `inbound|<port>||` clusters.

With iptables capture (REDIRECT) every inbound connection arrives at the `virtualInbound`
listener on 15006, and a filter chain per workload port picks the cluster.  Without
capture (the local mesh's proxy mode) the sidecar listens on the workload's address and
port itself, and the app listens beside it on the port `APP_PORTS` maps to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import wrappers_pb2

from libs.envoy import TLS_INSPECTOR, duration, pack
from services.pilot.model.instances import service_instances
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import ProxyScope
from services.pilot.model.services import Protocol, detect_protocol
from services.pilot.networking import names
from services.pilot.networking.clusters import use_http2
from services.pilot.networking.endpoints import socket_address
from services.pilot.networking.http_manager import hcm_filter, http_connection_manager
from services.pilot.networking.mtls import inbound_tls_context, peer_authentication_mode, transport_socket
from services.pilot.networking.observability import observe_http
from services.pilot.networking.security import NO_SECURITY, ProxySecurity, guard_routes
from services.pilot.networking.tcp_proxy import tcp_proxy_filter

INBOUND_PORT = 15006


@dataclass(frozen=True)
class InboundPort:
    port: int
    protocol: Protocol


@dataclass
class InboundOutput:
    listeners: list[listener_pb2.Listener] = field(default_factory=list)
    clusters: list[cluster_pb2.Cluster] = field(default_factory=list)
    # One per HTTP port, over RDS, so a policy change reaches open connections.
    routes: list[route_pb2.RouteConfiguration] = field(default_factory=list)


def app_ports(proxy: Proxy) -> dict[int, int]:
    """`APP_PORTS` metadata: `9080:19080,…` (workload port -> where the app listens)."""
    mapping: dict[int, int] = {}
    for item in str(proxy.metadata.get("APP_PORTS", "")).split(","):
        if ":" in item:
            port, _, app = item.partition(":")
            if port.strip().isdigit() and app.strip().isdigit():
                mapping[int(port)] = int(app)
    return mapping


def inbound_ports(proxy: Proxy, push: PushContext, scope: ProxyScope) -> list[InboundPort]:
    """A Sidecar's `ingress` listeners when it has them, else the ports of the services
    whose endpoints are this workload."""
    if scope.ingress:
        return [InboundPort(i["port"]["number"], detect_protocol(i["port"].get("name", ""),
                                                                 i["port"].get("protocol", "")))
                for i in scope.ingress]
    seen: dict[int, InboundPort] = {}
    for instance in service_instances(proxy, push):
        seen.setdefault(instance.target_port, InboundPort(instance.target_port, instance.port.protocol))
    return [seen[p] for p in sorted(seen)]


# Envoy reaches the app from this address under iptables capture: the capture rules
# leave it alone, so the connection is not redirected back into Envoy.
INBOUND_SOURCE = "127.0.0.6"


def _cluster(proxy: Proxy, push: PushContext, port: InboundPort, target: tuple[str, int]) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(
        name=names.inbound_cluster(port.port), type=cluster_pb2.Cluster.STATIC,
        connect_timeout=duration(push.mesh.connect_timeout_s),
    )
    if port.protocol.is_http2:
        # gRPC and HTTP/2 apps speak only HTTP/2: the hop to them must too.
        use_http2(cluster)
    if proxy.interception != "NONE":
        cluster.upstream_bind_config.source_address.address = INBOUND_SOURCE
        cluster.upstream_bind_config.source_address.port_value = 0
    cluster.load_assignment.cluster_name = cluster.name
    endpoint = cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint
    endpoint.address.CopyFrom(socket_address(*target))
    return cluster


def route_config(port: int, security: ProxySecurity) -> route_pb2.RouteConfiguration:
    """`inbound|<port>||`, Istio's inbound route: everything to the workload's port."""
    cluster = names.inbound_cluster(port)
    route = rc.Route(name="default", match=rc.RouteMatch(prefix="/"))
    route.route.cluster = cluster
    route.route.timeout.SetInParent()
    route.route.upgrade_configs.add(upgrade_type="websocket")
    return guard_routes(route_pb2.RouteConfiguration(
        name=cluster, validate_clusters=wrappers_pb2.BoolValue(value=False),
        virtual_hosts=[rc.VirtualHost(name=f"inbound|http|{port}", domains=["*"], routes=[route])],
    ), security)


def _filters(port: InboundPort, security: ProxySecurity, scope: ProxyScope, *,
             mtls: bool) -> list[listener_components_pb2.Filter]:
    stat_prefix = names.inbound_cluster(port.port)
    mesh = scope.push.mesh
    if port.protocol.is_http:
        manager = observe_http(http_connection_manager(stat_prefix, rds=names.inbound_cluster(port.port),
                                                       security_filters=security.http_filters), mesh, inbound=True,
                               view=scope.telemetry)
        if mtls:
            # The app learns who called it: the peer's SPIFFE id in x-forwarded-client-cert.
            manager.forward_client_cert_details = hcm.HttpConnectionManager.APPEND_FORWARD
            manager.set_current_client_cert_details.uri = True
        else:
            # A plaintext peer cannot vouch for itself: drop whatever XFCC it sent.
            manager.forward_client_cert_details = hcm.HttpConnectionManager.SANITIZE
        return [hcm_filter(manager)]
    return [*security.network_filters, tcp_proxy_filter(stat_prefix, [(names.inbound_cluster(port.port), 100)],
                                                         mesh=mesh, inbound=True, view=scope.telemetry)]


def _chains(proxy: Proxy, scope: ProxyScope, port: InboundPort, security: ProxySecurity, *, match_port: bool
            ) -> list[listener_components_pb2.FilterChain]:
    mode = peer_authentication_mode(proxy, scope.push, port.port) if proxy.identity else "DISABLE"
    chains = _by_mode(mode, f"inbound|{port.port}", scope.push, http=port.protocol.is_http,
                      filters=lambda mtls: _filters(port, security, scope, mtls=mtls))
    if match_port:
        for chain in chains:
            chain.filter_chain_match.destination_port.value = port.port
    return chains


def _by_mode(mode: str, name: str, push: PushContext, *, http: bool,
             filters: Callable[[bool], list[listener_components_pb2.Filter]]
             ) -> list[listener_components_pb2.FilterChain]:
    """STRICT: a TLS chain only; PERMISSIVE: TLS and plaintext, told apart by the TLS
    inspector; DISABLE, or a proxy without a workload certificate: plaintext only.
    `filters(mtls)` gives each chain its filters."""
    chains: list[listener_components_pb2.FilterChain] = []
    if mode in ("STRICT", "PERMISSIVE"):
        chain = listener_components_pb2.FilterChain(name=f"{name}|mtls")
        chain.filter_chain_match.transport_protocol = "tls"
        chain.transport_socket.CopyFrom(transport_socket(inbound_tls_context(push, http=http)))
        chain.filters.extend(filters(True))
        chains.append(chain)
    if mode in ("PERMISSIVE", "DISABLE"):
        chain = listener_components_pb2.FilterChain(name=f"{name}|plaintext")
        if mode == "PERMISSIVE":
            chain.filter_chain_match.transport_protocol = "raw_buffer"
        chain.filters.extend(filters(False))
        chains.append(chain)
    return chains


def _passthrough_chains(proxy: Proxy, scope: ProxyScope, security: ProxySecurity
                        ) -> list[listener_components_pb2.FilterChain]:
    """Ports no service declares are the workload's too: the workload's mTLS mode (no port
    has a port-level one here) decides as for a declared port, so STRICT leaves no port in
    plain text, and policies guard them as TCP."""
    push = scope.push
    mode = peer_authentication_mode(proxy, push, 0) if proxy.identity else "DISABLE"

    def filters(_: bool) -> list[listener_components_pb2.Filter]:
        return [*security.network_filters,
                tcp_proxy_filter("InboundPassthroughCluster", [(names.INBOUND_PASSTHROUGH_CLUSTER, 100)],
                                 mesh=push.mesh, inbound=True, view=scope.telemetry)]

    return _by_mode(mode, "inbound-passthrough", push, http=False, filters=filters)


def _inspect_tls(listener: listener_pb2.Listener) -> None:
    listener.listener_filters.add(name=TLS_INSPECTOR).typed_config.CopyFrom(
        pack(tls_inspector_pb2.TlsInspector()))


def build(proxy: Proxy, push: PushContext, scope: ProxyScope, security: ProxySecurity = NO_SECURITY) -> InboundOutput:
    out = InboundOutput()
    ports = inbound_ports(proxy, push, scope)
    mapping = app_ports(proxy)
    capture = proxy.interception != "NONE"
    for port in ports:
        target = (proxy.ip, port.port) if capture else (proxy.bind_address, mapping.get(port.port, port.port))
        out.clusters.append(_cluster(proxy, push, port, target))
        if port.protocol.is_http:
            out.routes.append(route_config(port.port, security))
    if capture:
        listener = listener_pb2.Listener(
            name=names.VIRTUAL_INBOUND_LISTENER, address=socket_address(proxy.bind_address, INBOUND_PORT),
            traffic_direction=1,  # INBOUND
        )
        listener.listener_filters.add(name="envoy.filters.listener.original_dst").typed_config.CopyFrom(
            pack(original_dst_pb2.OriginalDst()))
        if proxy.identity:
            _inspect_tls(listener)
        for port in ports:
            listener.filter_chains.extend(_chains(proxy, scope, port, security, match_port=True))
        listener.filter_chains.extend(_passthrough_chains(proxy, scope, security))
        out.listeners.append(listener)
        original = cluster_pb2.Cluster(
            name=names.INBOUND_PASSTHROUGH_CLUSTER, type=cluster_pb2.Cluster.ORIGINAL_DST,
            lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, connect_timeout=duration(push.mesh.connect_timeout_s),
        )
        original.upstream_bind_config.source_address.address = INBOUND_SOURCE
        original.upstream_bind_config.source_address.port_value = 0
        out.clusters.append(original)
        return out
    for port in ports:
        if mapping.get(port.port, port.port) == port.port:
            # The app holds this address and port itself: listening there too would fail.
            continue
        listener = listener_pb2.Listener(
            name=names.listener_name(proxy.bind_address, port.port),
            address=socket_address(proxy.bind_address, port.port),
            traffic_direction=1,
        )
        if proxy.identity:
            _inspect_tls(listener)
        listener.filter_chains.extend(_chains(proxy, scope, port, security, match_port=False))
        out.listeners.append(listener)
    return out

