"""Router proxies (ingress and egress gateways): a listener per Gateway server port, with
filter chains for the servers merged onto it, and the route configurations of its HTTP(S)
servers (Istio's buildGatewayListeners).

What each server kind becomes:
- HTTP (HTTP, HTTP2, GRPC, GRPC-WEB): one chain per port, HCM on RDS `http.<port>`.
- HTTPS with SIMPLE/MUTUAL/OPTIONAL_MUTUAL/ISTIO_MUTUAL: a chain matched by the server's
  hosts as SNI, terminating TLS, HCM on RDS `https.<port>.<port name>.<gateway>.<namespace>`.
- HTTPS/TLS PASSTHROUGH: a chain per VirtualService `tls` match (by `sniHosts`) -> tcp_proxy.
- AUTO_PASSTHROUGH: a chain per mesh service and subset (by `outbound_.<port>_.<subset>_.<host>`).
- TLS terminated (SIMPLE, MUTUAL...) and TCP/MONGO/REDIS/MYSQL: VirtualService `tcp` rules
  -> tcp_proxy; a server no rule routes gets no chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from libs.config import Resource
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.telemetry import NO_TELEMETRY, TelemetryView
from services.pilot.networking import gateway_http, gateway_tcp, names
from services.pilot.networking.endpoints import socket_address
from services.pilot.networking.gateway_chains import Chain, assemble
from services.pilot.networking.gateway_servers import MergedGateway, PortServers, merge
from services.pilot.networking.security import NO_SECURITY, ProxySecurity, guard_routes


@dataclass
class GatewayOutput:
    listeners: list[listener_pb2.Listener] = field(default_factory=list)
    routes: list[route_pb2.RouteConfiguration] = field(default_factory=list)
    # Clusters each listener or route configuration names (for make-before-break).
    references: dict[str, set[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def selected_gateways(proxy: Proxy, push: PushContext) -> list[Resource]:
    """Gateways whose selector matches this proxy (Istio: across all namespaces), in
    namespace/name order: the first one wins a port conflict."""
    return [g for g in push.gateways() if proxy.matches(g.spec.get("selector", {}))]


def _chains(group: PortServers, listener_name: str, merged: MergedGateway, proxy: Proxy, push: PushContext,
            security: ProxySecurity, view: TelemetryView, out: GatewayOutput) -> list[Chain]:
    if group.plaintext and group.servers[0].is_http:
        route_name = merged.route_names[group.servers[0]]
        return [gateway_http.http_chain(listener_name, route_name, group.servers, security, push.mesh, view)]
    chains: list[Chain] = []
    for server in group.servers:
        if server.terminates_https:
            chain = gateway_http.https_chain(listener_name, merged.route_names[server], server, out.warnings,
                                             security, push.mesh, view)
            chains.extend([chain] if chain else [])
        elif server.tls_mode == "AUTO_PASSTHROUGH":
            chains.extend(gateway_tcp.auto_passthrough_chains(server, push, view))
        elif server.is_passthrough:
            chains.extend(gateway_tcp.passthrough_chains(server, proxy, push, view, out.warnings))
        else:
            chains.extend(gateway_tcp.tcp_chains(server, proxy, push, view, out.warnings))
    return chains


def _guard_tcp(chains: list[Chain], security: ProxySecurity) -> list[Chain]:
    """TCP chains (passthrough, terminated TLS, plain TCP) get the network RBAC filters in
    front of their tcp_proxy; HTTP chains got theirs inside the connection manager."""
    for chain in chains:
        if not chain.rds:
            chain.filters[:0] = security.network_filters
    return chains


def build(proxy: Proxy, push: PushContext, security: ProxySecurity = NO_SECURITY,
          view: TelemetryView = NO_TELEMETRY) -> GatewayOutput:
    out = GatewayOutput()
    merged = merge(selected_gateways(proxy, push))
    out.warnings.extend(merged.warnings)
    served_routes: set[str] = set()
    for group in merged.ports:
        address = group.bind or proxy.bind_address
        name = names.listener_name(address, group.number)
        listener, kept = assemble(name, socket_address(address, group.number),
                                  _guard_tcp(_chains(group, name, merged, proxy, push, security, view, out),
                                             security),
                                  out.warnings)
        if listener is None:
            continue
        out.listeners.append(listener)
        clusters = set().union(*(chain.clusters for chain in kept))
        if clusters:
            out.references[name] = clusters
        served_routes.update(chain.rds for chain in kept if chain.rds)
    for route_name in sorted(served_routes):
        config, clusters = gateway_http.route_configuration(
            route_name, merged.servers_for_route(route_name), proxy, push, out.warnings)
        out.routes.append(guard_routes(config, security))
        out.references[route_name] = clusters
    return out
