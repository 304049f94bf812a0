"""Outbound: the services a sidecar's app may call.

With iptables capture (REDIRECT), `virtualOutbound` on 15001 takes every outbound
connection and hands it (use_original_dst) to the listener for its original destination
port: `0.0.0.0_<port>` for HTTP, routed by RDS route configuration `<port>`, and
`<address>_<port>` or `0.0.0.0_<port>` for TCP.  Anything else goes to PassthroughCluster
(ALLOW_ANY) or BlackHoleCluster (REGISTRY_ONLY).

Without capture (INTERCEPTION_MODE NONE, the local mesh without root), apps use the
sidecar as their HTTP proxy (`HTTP_PROXY=http://<workload address>:15001`): one listener
there, routed by the route configuration `http_proxy`, whose hosts carry their ports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import wrappers_pb2

from services.pilot.model.scope import ProxyScope
from services.pilot.model.services import Service, ServicePort
from services.pilot.networking import names
from services.pilot.networking.endpoints import socket_address
from services.pilot.networking.http_manager import hcm_filter, http_connection_manager
from services.pilot.networking.memo import TranslationMemo
from services.pilot.networking.observability import observe_http
from services.pilot.networking.routes import MAX_DIRECT_RESPONSE_BODY_BYTES, MESH_GATEWAY, RouteContext
from services.pilot.networking.sidecar_tcp import tcp_destinations
from services.pilot.networking.tcp_proxy import tcp_proxy_filter
from services.pilot.networking.virtual_hosts import fallback_host, vhost_entry, virtual_host_entries, virtual_hosts

OUTBOUND_PORT = 15001
_MAX_BODY = wrappers_pb2.UInt32Value(value=MAX_DIRECT_RESPONSE_BODY_BYTES)
HTTP_PROXY_ROUTE = "http_proxy"


@dataclass
class OutboundOutput:
    listeners: list[listener_pb2.Listener] = field(default_factory=list)
    routes: list[route_pb2.RouteConfiguration] = field(default_factory=list)
    references: dict[str, set[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _by_port(scope: ProxyScope) -> tuple[dict[int, list[tuple[Service, ServicePort]]],
                                          dict[int, list[tuple[Service, ServicePort]]]]:
    http: dict[int, list[tuple[Service, ServicePort]]] = defaultdict(list)
    tcp: dict[int, list[tuple[Service, ServicePort]]] = defaultdict(list)
    for service in scope.services():
        for port in service.ports:
            (http if port.protocol.is_http else tcp)[port.number].append((service, port))
    return http, tcp


def _route_config(name: str, services: list[tuple[Service, ServicePort]], scope: ProxyScope, port: int,
                  out: OutboundOutput, memo: TranslationMemo | None) -> route_pb2.RouteConfiguration:
    """One port's routes.  The listener already chose the port, so the Host's port is not
    matched and each domain is a bare name: half the domains, and `reviews:8080` sent to
    port 9080 still finds reviews, as in Istio since 1.15."""
    ctx = RouteContext(push=scope.push, proxy=scope.proxy, port=port, gateways=frozenset({MESH_GATEWAY}))
    entries = virtual_host_entries(services, scope, ctx, ports="none", memo=memo)
    entries.append(vhost_entry(fallback_host(scope.outbound_policy, ctx)))
    settings = route_pb2.RouteConfiguration(validate_clusters=wrappers_pb2.BoolValue(value=False),
                                            max_direct_response_body_size_bytes=_MAX_BODY,
                                            ignore_port_in_host_matching=True)
    out.references[name] = ctx.clusters
    out.warnings.extend(ctx.warnings)
    return _assembled(name, entries, settings, memo)


def _assembled(name: str, entries: list[bytes], settings: route_pb2.RouteConfiguration,
               memo: TranslationMemo | None) -> route_pb2.RouteConfiguration:
    """The route configuration `name` with the serialised virtual hosts `entries` and the
    other fields of `settings`, parsed from its bytes.  A thousand hosts are joined as
    bytes, where adding them as messages copied each (and encoding the result for Envoy
    serialised it again): ~10 ms a namespace for each VirtualService change.  The bytes
    are laid out as the message's own serialisation would be (name, hosts, then the rest),
    and its encoding for Envoy takes them as they are (`TranslationMemo.note_serialized`)."""
    value = b"".join((route_pb2.RouteConfiguration(name=name).SerializeToString(), *entries,
                      settings.SerializeToString()))
    config = route_pb2.RouteConfiguration.FromString(value)
    if memo is not None:
        memo.note_serialized(config, value)
    return config


def _fallback_cluster(scope: ProxyScope) -> str:
    return names.BLACKHOLE_CLUSTER if scope.outbound_policy == "REGISTRY_ONLY" else names.PASSTHROUGH_CLUSTER


def _captured(scope: ProxyScope, out: OutboundOutput, memo: TranslationMemo | None) -> None:
    http, tcp = _by_port(scope)
    virtual = listener_pb2.Listener(
        name=names.VIRTUAL_OUTBOUND_LISTENER, address=socket_address(scope.proxy.bind_address, OUTBOUND_PORT),
        use_original_dst=wrappers_pb2.BoolValue(value=True), traffic_direction=2,  # OUTBOUND
    )
    virtual.filter_chains.add(name=names.VIRTUAL_OUTBOUND_LISTENER).filters.append(
        tcp_proxy_filter(_fallback_cluster(scope), [(_fallback_cluster(scope), 100)], mesh=scope.push.mesh,
                         view=scope.telemetry))
    out.listeners.append(virtual)
    out.references[virtual.name] = {_fallback_cluster(scope)}
    for port in sorted(http):
        name = str(port)
        out.routes.append(_route_config(name, http[port], scope, port, out, memo))
        listener = listener_pb2.Listener(
            name=names.listener_name("0.0.0.0", port), address=socket_address("0.0.0.0", port),
            bind_to_port=wrappers_pb2.BoolValue(value=False), traffic_direction=2,
        )
        manager = observe_http(http_connection_manager(f"outbound_0.0.0.0_{port}", rds=name), scope.push.mesh,
                               inbound=False, view=scope.telemetry)
        listener.filter_chains.add().filters.append(hcm_filter(manager))
        out.listeners.append(listener)
    for port in sorted(tcp):
        if port in http:
            out.warnings.append(f"port {port} carries both HTTP and TCP services; TCP services on it are "
                                "reachable only through PassthroughCluster")
            continue
        for service, service_port in tcp[port]:
            address = service.addresses[0].split("/")[0] if service.addresses else "0.0.0.0"
            name = names.listener_name(address, port)
            if any(listener.name == name for listener in out.listeners):
                out.warnings.append(f"{service.hostname}:{port} shares {name} with another service; skipped")
                continue
            clusters = tcp_destinations(service, service_port, scope, out.warnings)
            listener = listener_pb2.Listener(
                name=name, address=socket_address(address, port),
                bind_to_port=wrappers_pb2.BoolValue(value=False), traffic_direction=2,
            )
            listener.filter_chains.add().filters.append(tcp_proxy_filter(f"outbound|{port}||{service.hostname}",
                                                                          clusters, mesh=scope.push.mesh,
                                                                          view=scope.telemetry))
            out.references[name] = {c for c, _ in clusters}
            out.listeners.append(listener)


def _proxy_mode(scope: ProxyScope, out: OutboundOutput, memo: TranslationMemo | None) -> None:
    http, _ = _by_port(scope)
    services = [entry for port in sorted(http) for entry in http[port]]
    ctx = RouteContext(push=scope.push, proxy=scope.proxy, port=0, gateways=frozenset({MESH_GATEWAY}))
    config = route_pb2.RouteConfiguration(name=HTTP_PROXY_ROUTE, validate_clusters=wrappers_pb2.BoolValue(value=False),
                                          max_direct_response_body_size_bytes=_MAX_BODY)
    # Over an HTTP proxy the port is part of the Host; a Host without one means port 80.
    config.virtual_hosts.extend(virtual_hosts([e for e in services if e[1].number == 80], scope, ctx,
                                              ports="also", memo=memo))
    config.virtual_hosts.extend(virtual_hosts([e for e in services if e[1].number != 80], scope, ctx,
                                              ports="only", memo=memo))
    config.virtual_hosts.append(fallback_host(scope.outbound_policy, ctx))
    out.routes.append(config)
    out.references[HTTP_PROXY_ROUTE] = ctx.clusters
    out.warnings.extend(ctx.warnings)
    listener = listener_pb2.Listener(
        name=names.listener_name(scope.proxy.bind_address, OUTBOUND_PORT),
        address=socket_address(scope.proxy.bind_address, OUTBOUND_PORT), traffic_direction=2,
    )
    manager = observe_http(http_connection_manager(f"outbound_{scope.proxy.bind_address}_{OUTBOUND_PORT}",
                                                   rds=HTTP_PROXY_ROUTE), scope.push.mesh, inbound=False,
                           view=scope.telemetry)
    listener.filter_chains.add().filters.append(hcm_filter(manager))
    out.listeners.append(listener)


def build(scope: ProxyScope, memo: TranslationMemo | None = None) -> OutboundOutput:
    """`memo`: where virtual hosts no VirtualService routes are kept (see `virtual_hosts`)."""
    out = OutboundOutput()
    if scope.proxy.interception == "NONE":
        _proxy_mode(scope, out, memo)
    else:
        _captured(scope, out, memo)
    return out
