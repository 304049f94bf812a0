"""Router proxies (ingress and egress gateways): listeners from Gateway servers and
routes from the VirtualServices bound to those gateways."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf import wrappers_pb2

from libs.config import Resource
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import names
from services.pilot.networking.endpoints import socket_address
from services.pilot.networking.http_manager import hcm_filter, http_connection_manager
from services.pilot.networking.routes import RouteContext, http_routes, vs_applies


@dataclass
class GatewayOutput:
    listeners: list[listener_pb2.Listener] = field(default_factory=list)
    routes: list[route_pb2.RouteConfiguration] = field(default_factory=list)
    # Clusters each listener or route configuration names (for make-before-break).
    references: dict[str, set[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Server:
    gateway: Resource
    index: int
    port: int
    protocol: str
    hosts: tuple[str, ...]
    https_redirect: bool

    @property
    def gateway_ref(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"


def selected_gateways(proxy: Proxy, push: PushContext) -> list[Resource]:
    """Gateways whose selector matches this proxy (Istio: across all namespaces)."""
    return [g for g in push.gateways() if proxy.matches(g.spec.get("selector", {}))]


def _servers(gateways: list[Resource]) -> list[_Server]:
    servers = []
    for gateway in gateways:
        for i, server in enumerate(gateway.spec.get("servers", [])):
            port = server.get("port", {})
            servers.append(_Server(
                gateway=gateway, index=i, port=port.get("number", 0), protocol=port.get("protocol", "").upper(),
                hosts=tuple(server.get("hosts", [])),
                https_redirect=bool(server.get("tls", {}).get("httpsRedirect")),
            ))
    return servers


def _host_matches(server_host: str, vs_host: str, vs_namespace: str, gateway_namespace: str) -> str | None:
    """The virtual-host name the pair yields, or None when they do not intersect."""
    namespace, _, dns = server_host.rpartition("/")
    if namespace and namespace not in ("*", vs_namespace) and not (namespace == "." and
                                                                   vs_namespace == gateway_namespace):
        return None
    if dns in ("*", vs_host):
        return vs_host
    if vs_host == "*":
        return dns
    if dns.startswith("*") and vs_host.endswith(dns[1:]):
        return vs_host
    if vs_host.startswith("*") and dns.endswith(vs_host[1:]):
        return dns
    return None


def _route_configuration(port: int, servers: list[_Server], proxy: Proxy, push: PushContext,
                         out: GatewayOutput) -> route_pb2.RouteConfiguration:
    name = names.gateway_route_name(port)
    ctx = RouteContext(push=push, proxy=proxy, port=port, gateways=frozenset(s.gateway_ref for s in servers))
    hosts: dict[str, list[rc.Route]] = defaultdict(list)
    redirect_hosts: set[str] = set()
    for vs in push.virtual_services():
        if not vs_applies(vs, ctx.gateways):
            continue
        vs_hosts: list[str] = []
        for server in servers:
            if not vs_applies(vs, frozenset({server.gateway_ref})):
                continue
            for vs_host in vs.spec.get("hosts", []):
                for server_host in server.hosts:
                    matched = _host_matches(server_host, vs_host, vs.namespace, server.gateway.namespace)
                    if matched and matched not in vs_hosts:
                        vs_hosts.append(matched)
                        if server.https_redirect:
                            redirect_hosts.add(matched)
        if not vs_hosts:
            continue
        routes = http_routes(vs, ctx)
        for host in vs_hosts:
            hosts[host].extend(routes)
    config = route_pb2.RouteConfiguration(name=name, validate_clusters=wrappers_pb2.BoolValue(value=False))
    for host in sorted(hosts, key=lambda h: (h == "*", h)):
        vhost = config.virtual_hosts.add(name=f"{host}:{port}", routes=hosts[host])
        vhost.domains.extend(["*"] if host == "*" else [host, f"{host}:*"])
        if host in redirect_hosts:
            vhost.require_tls = rc.VirtualHost.ALL
    out.references[name] = ctx.clusters
    out.warnings.extend(ctx.warnings)
    return config


def build(proxy: Proxy, push: PushContext) -> GatewayOutput:
    out = GatewayOutput()
    by_port: dict[int, list[_Server]] = defaultdict(list)
    for server in _servers(selected_gateways(proxy, push)):
        by_port[server.port].append(server)
    for port in sorted(by_port):
        servers = by_port[port]
        protocols = {s.protocol for s in servers}
        if not protocols <= {"HTTP", "HTTP2", "GRPC"}:
            out.warnings.append(f"gateway port {port}: protocol {', '.join(sorted(protocols))} is not served yet")
            continue
        listener = listener_pb2.Listener(
            name=names.listener_name(proxy.bind_address, port),
            address=socket_address(proxy.bind_address, port),
        )
        route_name = names.gateway_route_name(port)
        manager = http_connection_manager(f"outbound_{proxy.bind_address}_{port}", rds=route_name,
                                          use_remote_address=True)
        listener.filter_chains.add().filters.append(hcm_filter(manager))
        out.listeners.append(listener)
        out.routes.append(_route_configuration(port, servers, proxy, push, out))
    return out
