"""HTTP and HTTPS gateway servers: the HTTP connection manager chains and the route
configurations (`http.<port>` shared by a port's HTTP servers, `https.<port>.<port name>.
<gateway>.<namespace>` per terminating HTTPS server) holding the bound VirtualServices."""

from __future__ import annotations

from collections import defaultdict

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import wrappers_pb2

from libs.config import Resource
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.telemetry import TelemetryView
from services.pilot.networking.gateway_chains import Chain
from services.pilot.networking.gateway_servers import Server
from services.pilot.networking.gateway_tls import downstream_tls_context
from services.pilot.networking.http_manager import hcm_filter, http_connection_manager
from services.pilot.networking.observability import observe_http
from services.pilot.networking.routes import (
    MAX_DIRECT_RESPONSE_BODY_BYTES,
    RouteContext,
    combine_vhost_routes,
    http_routes,
    vs_applies,
)
from services.pilot.networking.security import ProxySecurity


def host_match(server_host: str, vs_host: str, vs_namespace: str) -> str | None:
    """The host a (server host, VirtualService host) pair serves, or None when they do not
    intersect; `ns/host` server hosts only admit VirtualServices in `ns`."""
    namespace, _, dns = server_host.rpartition("/")
    if namespace and namespace not in ("*", vs_namespace):
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


def bound_hosts(vs: Resource, server: Server) -> list[str]:
    """The hosts of `vs` a server exposes, when `vs` is bound to the server's gateway."""
    if not vs_applies(vs, frozenset({server.gateway_ref})):
        return []
    found: list[str] = []
    for vs_host in vs.spec.get("hosts", []):
        for server_host in server.hosts:
            matched = host_match(server_host, vs_host, vs.namespace)
            if matched and matched not in found:
                found.append(matched)
    return found


def route_configuration(name: str, servers: list[Server], proxy: Proxy, push: PushContext,
                        warnings: list[str]) -> tuple[route_pb2.RouteConfiguration, set[str]]:
    """Istio's buildGatewayHTTPRouteConfig: one virtual host per host the servers and their
    VirtualServices share, the routes of every VirtualService for it in order; hosts of an
    httpsRedirect server answer 301 to https. Returns the clusters the routes name."""
    port = servers[0].number
    ctx = RouteContext(push=push, proxy=proxy, port=port, gateways=frozenset(s.gateway_ref for s in servers),
                       tls=all(s.terminates_https for s in servers))
    hosts: dict[str, list[rc.Route]] = defaultdict(list)
    redirect: set[str] = set()
    for vs in push.virtual_services():
        vs_hosts: list[str] = []
        for server in servers:
            for host in bound_hosts(vs, server):
                if host not in vs_hosts:
                    vs_hosts.append(host)
                if server.https_redirect:
                    redirect.add(host)
        routes = http_routes(vs, ctx) if vs_hosts else []
        # Istio: a VirtualService with no HTTP route for this port adds no virtual host.
        if not routes:
            continue
        for host in vs_hosts:
            hosts[host].extend(routes)
    for server in servers:
        if server.https_redirect:
            for host in server.sni_hosts:
                hosts.setdefault(host, [])
                redirect.add(host)
    # The Host's port is not matched: behind a load balancer or a node port, clients name
    # ports the gateway never sees (Istio since 1.15).
    config = route_pb2.RouteConfiguration(
        name=name, validate_clusters=wrappers_pb2.BoolValue(value=False),
        max_direct_response_body_size_bytes=wrappers_pb2.UInt32Value(value=MAX_DIRECT_RESPONSE_BODY_BYTES),
        ignore_port_in_host_matching=True)
    for host in sorted(hosts, key=lambda h: (h == "*", h)):
        vhost = config.virtual_hosts.add(name=f"{host}:{port}", routes=combine_vhost_routes(hosts[host]),
                                         domains=[host], include_request_attempt_count=True)
        if host in redirect:
            vhost.require_tls = rc.VirtualHost.ALL
    if not config.virtual_hosts:
        # Istio's default: nothing bound answers 404 rather than an empty configuration.
        config.virtual_hosts.add(name=f"blackhole:{port}", domains=["*"])
    warnings.extend(ctx.warnings)
    return config, ctx.clusters


def _gateway_manager(stat_prefix: str, route_name: str, security: ProxySecurity, mesh: MeshConfig,
                     view: TelemetryView) -> hcm.HttpConnectionManager:
    # The gateway is the mesh's edge: the client is the peer, or the trusted proxies in
    # front of it told us who in X-Forwarded-For (what `remoteIpBlocks` policies match).
    manager = observe_http(http_connection_manager(
        stat_prefix, rds=route_name, use_remote_address=True, security_filters=security.http_filters,
        xff_num_trusted_hops=mesh.num_trusted_proxies), mesh, inbound=False, view=view)
    # Istio's gateway default: replace any client-sent XFCC with what this hop verified.
    manager.forward_client_cert_details = hcm.HttpConnectionManager.SANITIZE_SET
    details = manager.set_current_client_cert_details
    details.subject.value = True
    details.cert = True
    details.dns = True
    details.uri = True
    return manager


def http_chain(listener_name: str, route_name: str, servers: list[Server], security: ProxySecurity,
               mesh: MeshConfig, view: TelemetryView) -> Chain:
    """The one plain-text chain of a port's HTTP servers."""
    manager = _gateway_manager(f"outbound_{listener_name}", route_name, security, mesh, view)
    return Chain(owner=servers[0].ref, filters=[hcm_filter(manager)], rds=route_name)


def https_chain(listener_name: str, route_name: str, server: Server, warnings: list[str],
                security: ProxySecurity, mesh: MeshConfig, view: TelemetryView) -> Chain | None:
    """A terminating HTTPS server: TLS with its certificates for its SNI hosts, then HTTP."""
    assert server.tls is not None
    context = downstream_tls_context(server.tls, http=True, where=server.ref, warnings=warnings)
    if context is None:
        return None
    manager = _gateway_manager(server.name or f"outbound_{listener_name}", route_name, security, mesh, view)
    return Chain(owner=server.ref, filters=[hcm_filter(manager)], server_names=server.sni_hosts, tls=context,
                 rds=route_name)
