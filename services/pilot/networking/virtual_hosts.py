"""Sidecar virtual hosts: one per service port, named and matched the way Istio does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Literal

from envoy.config.route.v3 import route_components_pb2 as rc

from libs.config import Resource
from libs.protowire import encode_varint
from services.pilot.model.mesh import MeshConfig, resolve_host
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import ProxyScope, host_matches
from services.pilot.model.services import Service, ServicePort
from services.pilot.networking import names, route_actions
from services.pilot.networking.memo import TranslationMemo
from services.pilot.networking.routes import MESH_GATEWAY, RouteContext, http_routes, vs_applies

ALLOW_ANY_VHOST = "allow_any"
BLOCK_ALL_VHOST = "block_all"

# How a virtual host's domains carry the port:
#   "none": names only, in a route configuration of one port that ignores the Host's port
#           (`ignore_port_in_host_matching`, as Istio's sidecars and gateways since 1.15);
#   "also": each name bare and with the port (gRPC clients match their target, host:port);
#   "only": each name with the port (an HTTP proxy's one configuration for every port).
PortForms = Literal["none", "also", "only"]


def host_forms(service: Service, client_namespace: str, mesh: MeshConfig) -> list[str]:
    """Every name a client may use: `reviews.default.svc.cluster.local`, `reviews.default.svc`,
    `reviews.default` and, from the same namespace, `reviews`."""
    suffix = f".svc.{mesh.domain_suffix}"
    forms = [service.hostname]
    if service.hostname.endswith(suffix):
        short = service.hostname[: -len(suffix)]
        name, _, namespace = short.partition(".")
        forms += [f"{short}.svc", short]
        if namespace == client_namespace:
            forms.append(name)
    forms.extend(service.addresses)
    return forms


def domains(service: Service, port: ServicePort, client_namespace: str, mesh: MeshConfig, *,
            ports: PortForms) -> list[str]:
    """Each form of the service's name, with the port as `ports` says."""
    out: list[str] = []
    for form in host_forms(service, client_namespace, mesh):
        if ports != "only":
            out.append(form)
        if ports != "none":
            out.append(f"{form}:{port.number}")
    return out


def _mesh_virtual_services(push: PushContext) -> list[tuple[Resource, list[str]]]:
    """VirtualServices with HTTP routes that bind to sidecars, each with its hosts resolved:
    worked out once per push, not once per service and namespace."""
    mesh = frozenset({MESH_GATEWAY})
    return [(vs, [resolve_host(h, vs.namespace, push.mesh) for h in vs.spec.get("hosts", [])])
            for vs in push.virtual_services() if vs.spec.get("http") and vs_applies(vs, mesh)]


@dataclass(frozen=True)
class _Host:
    """One service port's place in a route configuration."""

    hostname: str
    port: int
    domains: tuple[str, ...]
    # Its virtual host when no VirtualService routes it, and the cluster that one calls.
    default: rc.VirtualHost
    cluster: str

    def routed(self, routes: list[rc.Route]) -> rc.VirtualHost:
        """Its virtual host with a VirtualService's routes: the default's name and domains."""
        return rc.VirtualHost(name=self.default.name, domains=self.domains, include_request_attempt_count=True,
                              routes=routes)

    @cached_property
    def default_entry(self) -> bytes:
        """`default` serialised (`vhost_entry`), once while the plan holding it lives."""
        return vhost_entry(self.default)


@dataclass(frozen=True)
class _HostPlan:
    """A route configuration's hosts, their domains with duplicates dropped, and their
    default virtual hosts: everything but routing.  It reads nothing a VirtualService
    sets, so a routing change reuses it and rebuilds only the hosts it routes."""

    hosts: tuple[_Host, ...]
    by_hostname: dict[str, tuple[int, ...]]

    @classmethod
    def build(cls, services: list[tuple[Service, ServicePort]], client_namespace: str, mesh: MeshConfig,
              ports: PortForms, memo: TranslationMemo | None = None) -> _HostPlan:
        # A domain already taken by an earlier host is skipped: duplicates make Envoy reject
        # the whole route configuration.
        taken: set[str] = set()
        hosts: list[_Host] = []
        by_hostname: dict[str, list[int]] = {}
        for service, port in services:
            wanted = tuple(d for d in domains(service, port, client_namespace, mesh, ports=ports) if d not in taken)
            if not wanted:
                continue
            taken.update(wanted)
            by_hostname.setdefault(service.hostname, []).append(len(hosts))
            # Kept by name and domains, so plans built by the same push (every namespace's,
            # when the services change) share one message among the namespaces that name a
            # service alike, all but its own: ~30 MB at 1,000 services in 10 namespaces.
            key = (service.hostname, port.number, wanted)
            default = (memo.lasting(("default-vhost", *key), partial(_default_host, *key)) if memo is not None
                       else _default_host(*key))
            hosts.append(_Host(service.hostname, port.number, wanted, *default))
        return cls(tuple(hosts), {name: tuple(indexes) for name, indexes in by_hostname.items()})

    def covered(self, patterns: list[str]) -> set[int]:
        """The hosts whose service one of `patterns` (a VirtualService's hosts) matches."""
        out: set[int] = set()
        for pattern in patterns:
            if pattern.startswith("*"):
                out.update(i for i, host in enumerate(self.hosts) if host_matches(pattern, host.hostname))
            else:
                out.update(self.by_hostname.get(pattern, ()))
        return out


def _routed(plan: _HostPlan, scope: ProxyScope, ctx: RouteContext) -> dict[int, list[rc.Route]]:
    """Per host that a VirtualService routes, the routes of the first VirtualService (in
    config order) whose hosts cover its service and that has routes for its port; Istio
    merges only for identical hosts, and so do we."""
    candidates: dict[int, list[Resource]] = {}
    for vs, hosts in scope.push.derived("mesh-virtual-services", lambda: _mesh_virtual_services(scope.push)):
        if scope.virtual_service_visible(vs):
            for index in plan.covered(hosts):
                candidates.setdefault(index, []).append(vs)
    routed: dict[int, list[rc.Route]] = {}
    for index in sorted(candidates):
        route_ctx = RouteContext(push=ctx.push, proxy=ctx.proxy, port=plan.hosts[index].port,
                                 gateways=frozenset({MESH_GATEWAY}), clusters=ctx.clusters, warnings=ctx.warnings)
        for vs in candidates[index]:
            routes = http_routes(vs, route_ctx)
            if routes:
                routed[index] = routes
                break
    return routed


def _default_host(hostname: str, port: int, wanted: tuple[str, ...]) -> tuple[rc.VirtualHost, str]:
    """A service port no VirtualService routes: all of it to its cluster, Istio's default
    retries, websockets allowed.  Depends on nothing but its arguments."""
    cluster = names.outbound_cluster(port, "", hostname)
    route = rc.Route(name="default", match=rc.RouteMatch(prefix="/"))
    route.route.cluster = cluster
    route.route.timeout.SetInParent()
    retry = route_actions.retry_policy(None)
    if retry is not None:
        route.route.retry_policy.CopyFrom(retry)
    route.route.upgrade_configs.add(upgrade_type="websocket")
    vhost = rc.VirtualHost(name=f"{hostname}:{port}", domains=wanted, include_request_attempt_count=True,
                           routes=[route])
    return vhost, cluster


def virtual_hosts(services: Iterable[tuple[Service, ServicePort]], scope: ProxyScope, ctx: RouteContext, *,
                  ports: PortForms, memo: TranslationMemo | None = None) -> list[rc.VirtualHost]:
    """Virtual hosts for `services`.  With `memo`, the plan of hosts (`_HostPlan`) is kept
    for as long as the services, their names and the client's namespace stay the same, by
    every push: a routing change then rebuilds only the hosts it routes."""
    return [host.default if routes is None else host.routed(routes)
            for host, routes in _planned(services, scope, ctx, ports, memo)]


def virtual_host_entries(services: Iterable[tuple[Service, ServicePort]], scope: ProxyScope, ctx: RouteContext,
                         *, ports: PortForms, memo: TranslationMemo | None = None) -> list[bytes]:
    """`virtual_hosts`, serialised (`vhost_entry`): a host no VirtualService routes is
    serialised once while its plan lives, not once per route configuration and push."""
    return [host.default_entry if routes is None else vhost_entry(host.routed(routes))
            for host, routes in _planned(services, scope, ctx, ports, memo)]


def vhost_entry(vhost: rc.VirtualHost) -> bytes:
    """`vhost` as an entry of `RouteConfiguration.virtual_hosts` (field 2) in a serialised
    route configuration."""
    value = vhost.SerializeToString()
    return b"".join((_VIRTUAL_HOSTS_TAG, encode_varint(len(value)), value))


_VIRTUAL_HOSTS_TAG = b"\x12"


def _planned(services: Iterable[tuple[Service, ServicePort]], scope: ProxyScope, ctx: RouteContext,
             ports: PortForms, memo: TranslationMemo | None) -> list[tuple[_Host, list[rc.Route] | None]]:
    """Each host of the plan for `services`, with the routes a VirtualService gives it
    (None: its default, whose cluster is noted as used)."""
    services = list(services)
    client, mesh = scope.proxy.namespace, scope.push.mesh
    # Everything the plan reads: each service's names and port, the client's namespace.
    key = ("vhost-plan", ports, client, mesh.domain_suffix,
           tuple((service.hostname, service.addresses, port.number) for service, port in services))
    build = partial(_HostPlan.build, services, client, mesh, ports, memo)
    plan = memo.lasting(key, build) if memo is not None else build()
    routed = _routed(plan, scope, ctx)
    out: list[tuple[_Host, list[rc.Route] | None]] = []
    for index, host in enumerate(plan.hosts):
        routes = routed.get(index)
        if routes is None:
            ctx.clusters.add(host.cluster)
        out.append((host, routes))
    return out


def fallback_host(policy: str, ctx: RouteContext) -> rc.VirtualHost:
    """Unknown destinations: passed through (ALLOW_ANY) or refused with 502 (REGISTRY_ONLY)."""
    if policy == "REGISTRY_ONLY":
        vhost = rc.VirtualHost(name=BLOCK_ALL_VHOST, domains=["*"], include_request_attempt_count=True)
        route = vhost.routes.add(name=BLOCK_ALL_VHOST, match=rc.RouteMatch(prefix="/"))
        route.direct_response.status = 502
        return vhost
    vhost = rc.VirtualHost(name=ALLOW_ANY_VHOST, domains=["*"], include_request_attempt_count=True)
    route = vhost.routes.add(name=ALLOW_ANY_VHOST, match=rc.RouteMatch(prefix="/"))
    route.route.cluster = names.PASSTHROUGH_CLUSTER
    route.route.timeout.SetInParent()
    ctx.clusters.add(names.PASSTHROUGH_CLUSTER)
    return vhost
