"""Proxyless gRPC: what a gRPC library's own xDS client needs (gRFC A27, A28; Istio's grpcgen).

A channel `xds:///<host>:<port>` asks for exactly the resources it needs, by name, in this
order: LDS `<host>:<port>` (an API listener wrapping an HttpConnectionManager), RDS for the
route configuration that names, CDS for the clusters its routes use, EDS for their endpoints.
Pilot generates, for every service port the client may see:
- listeners named every way a client may write the target (`reviews.default.svc.cluster.local
  :9080`, `reviews.default.svc:9080`, `reviews.default:9080`, `reviews:9080` from the same
  namespace, the service's addresses; single-port services also without the port), so the
  name the client asked for is the name it gets; all of them name one route configuration;
- that route configuration, `outbound|<port>||<host>` (Istio's name): one virtual host whose
  domains are the same forms, with the VirtualService's routes as sidecars get them;
- clusters and endpoints as gRPC accepts them (`grpc_proxyless_clusters`).

gRPC rejects (NACKs) what it does not know unless told it is optional, so the HTTP filters
are fault and router only (router last), and CORS per-route config is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf.message import Message

from libs.envoy import ROUTER_FILTER, pack
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.scope import ProxyScope
from services.pilot.model.services import Service, ServicePort
from services.pilot.networking import names
from services.pilot.networking.route_actions import CORS_FILTER, FAULT_FILTER
from services.pilot.networking.routes import MESH_GATEWAY, RouteContext
from services.pilot.networking.virtual_hosts import host_forms, virtual_hosts

Part = dict[str, Message]


@dataclass
class ProxylessParts:
    """A proxyless client's resources, the clusters each route configuration names, and
    the route configurations the listeners name."""

    listeners: Part = field(default_factory=dict)
    routes: Part = field(default_factory=dict)
    clusters: Part = field(default_factory=dict)
    endpoints: Part = field(default_factory=dict)
    references: dict[str, frozenset[str]] = field(default_factory=dict)
    route_names: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


# -- LDS ---------------------------------------------------------------------------------

def route_config_name(service: Service, port: ServicePort) -> str:
    return names.outbound_cluster(port.number, "", service.hostname)


def listener_names(service: Service, port: ServicePort, client_namespace: str, mesh: MeshConfig) -> list[str]:
    """Every target a client may write for this port: each host form with the port, and
    without it when the service has only this port."""
    forms = host_forms(service, client_namespace, mesh)
    out = [f"{form}:{port.number}" for form in forms]
    if len(service.ports) == 1:
        out.extend(forms)
    return out


def http_connection_manager(route_name: str) -> hcm.HttpConnectionManager:
    """RDS over ADS; fault (Istio's fault injection, which gRPC implements) then the router,
    which gRPC requires last.  Nothing else: gRPC NACKs filters it does not know."""
    manager = hcm.HttpConnectionManager()
    manager.http_filters.add(name=FAULT_FILTER).typed_config.CopyFrom(pack(fault_pb2.HTTPFault()))
    manager.http_filters.add(name=ROUTER_FILTER).typed_config.CopyFrom(pack(router_pb2.Router()))
    manager.rds.route_config_name = route_name
    manager.rds.config_source.ads.SetInParent()
    manager.rds.config_source.resource_api_version = config_source_pb2.V3
    return manager


def api_listener(name: str, manager: hcm.HttpConnectionManager) -> listener_pb2.Listener:
    return listener_pb2.Listener(name=name, api_listener=api_listener_pb2.ApiListener(api_listener=pack(manager)))


# -- RDS ---------------------------------------------------------------------------------

def _for_grpc(route: rc.Route, where: str, warnings: list[str]) -> None:
    """What gRPC reads differently from Envoy: per-route config of filters it lacks is
    dropped (it would NACK the CORS policy), and the route timeout becomes the stream's
    maximum duration (gRPC ignores `timeout`; gRFC A31)."""
    if CORS_FILTER in route.typed_per_filter_config:
        del route.typed_per_filter_config[CORS_FILTER]
        warnings.append(f"{where}: corsPolicy does not apply to proxyless gRPC clients; dropped")
    if route.HasField("route"):
        timeout = route.route.timeout
        if timeout.seconds or timeout.nanos:
            route.route.max_stream_duration.max_stream_duration.CopyFrom(timeout)


def route_configuration(service: Service, port: ServicePort, scope: ProxyScope,
                        warnings: list[str]) -> tuple[route_pb2.RouteConfiguration, frozenset[str]]:
    """One virtual host for the service port, matched by every form of its name (gRPC picks
    the virtual host by the channel's target); the clusters its routes name."""
    ctx = RouteContext(push=scope.push, proxy=scope.proxy, port=port.number, gateways=frozenset({MESH_GATEWAY}))
    config = route_pb2.RouteConfiguration(name=route_config_name(service, port))
    config.virtual_hosts.extend(virtual_hosts([(service, port)], scope, ctx, ports="also"))
    for vhost in config.virtual_hosts:
        for route in vhost.routes:
            _for_grpc(route, f"{vhost.name} route {route.name or '(unnamed)'}", ctx.warnings)
    warnings.extend(ctx.warnings)
    return config, frozenset(ctx.clusters)


# -- all of it ---------------------------------------------------------------------------

def listeners_and_routes(scope: ProxyScope, services: list[Service]) -> ProxylessParts:
    """LDS and RDS for the visible services; a name two services would share goes to the
    first by hostname (as sidecar virtual host domains do)."""
    out = ProxylessParts()
    warnings: list[str] = []
    route_names: set[str] = set()
    for service in services:
        for port in service.ports:
            route_name = route_config_name(service, port)
            config, referenced = route_configuration(service, port, scope, warnings)
            out.routes[route_name] = config
            out.references[route_name] = referenced
            manager = http_connection_manager(route_name)
            for name in listener_names(service, port, scope.proxy.namespace, scope.push.mesh):
                if name in out.listeners:
                    continue
                out.listeners[name] = api_listener(name, manager)
                route_names.add(route_name)
    out.route_names = frozenset(route_names)
    out.warnings = tuple(warnings)
    return out
