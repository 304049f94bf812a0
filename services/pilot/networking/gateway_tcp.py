"""Gateway servers Envoy forwards as opaque bytes: TCP (also MONGO, REDIS, MYSQL) and TLS
terminated at the gateway route by VirtualService `tcp` rules; PASSTHROUGH servers route the
still-encrypted session by SNI from `tls` rules; AUTO_PASSTHROUGH by the SNI a sidecar puts
on its mTLS connections. Everything ends in a tcp_proxy."""

from __future__ import annotations

from typing import Any

from libs.config import Resource
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import host_matches
from services.pilot.model.services import Protocol
from services.pilot.model.telemetry import TelemetryView
from services.pilot.networking import names
from services.pilot.networking.gateway_chains import Chain, valid_cidr
from services.pilot.networking.gateway_http import bound_hosts
from services.pilot.networking.gateway_servers import Server
from services.pilot.networking.gateway_tls import ISTIO_MTLS_ALPN, downstream_tls_context
from services.pilot.networking.routes import RouteContext, destination_cluster
from services.pilot.networking.tcp_proxy import tcp_proxy_filter


def l4_match(match: dict[str, Any], vs: Resource, server: Server) -> bool:
    """Istio's l4SingleMatch at a gateway: only the port and gateways conditions count
    (`destinationSubnets` become the chain's match instead)."""
    if match.get("port") and match["port"] != server.number:
        return False
    gateways = {g if "/" in g else f"{vs.namespace}/{g}" for g in match.get("gateways", [])}
    return not gateways or server.gateway_ref in gateways


def _subnets(match: dict[str, Any] | None, owner: str, warnings: list[str]) -> tuple[str, ...]:
    subnets = tuple((match or {}).get("destinationSubnets", []))
    bad = [s for s in subnets if not valid_cidr(s)]
    if bad:
        warnings.append(f"{owner}: destinationSubnets {', '.join(bad)} are not CIDRs; ignored")
    return tuple(s for s in subnets if valid_cidr(s))


def _forward(routes: list[dict[str, Any]], vs: Resource, server: Server, path: str, proxy: Proxy,
             push: PushContext, warnings: list[str]) -> tuple[list[tuple[str, int]], str]:
    """(cluster, weight) per resolvable destination, and a tcp_proxy stat prefix."""
    ctx = RouteContext(push=push, proxy=proxy, port=server.number, gateways=frozenset({server.gateway_ref}))
    clusters: list[tuple[str, int]] = []
    for i, target in enumerate(routes):
        cluster, reason = destination_cluster(target.get("destination", {}), vs, ctx)
        if cluster is None:
            warnings.append(f"{vs.ref}: {path}.route[{i}].destination: {reason}; skipped")
            continue
        clusters.append((cluster, int(target.get("weight", 100 if len(routes) == 1 else 0))))
    if len(clusters) > 1 and not any(weight > 0 for _, weight in clusters):
        clusters = clusters[:1]
    if not clusters:
        warnings.append(f"{vs.ref}: {path}: no destination can be reached; connections are closed")
        return [(names.BLACKHOLE_CLUSTER, 100)], names.BLACKHOLE_CLUSTER
    return clusters, clusters[0][0] if len(clusters) == 1 else f"{vs.namespace}/{vs.name}.{path}"


def _chain(owner: str, clusters: list[tuple[str, int]], stat_prefix: str, mesh: MeshConfig, view: TelemetryView,
           **match: Any) -> Chain:
    used = {name for name, weight in clusters if weight > 0 or len(clusters) == 1}
    return Chain(owner=owner, filters=[tcp_proxy_filter(stat_prefix, clusters, mesh=mesh, view=view)], clusters=used,
                 **match)


def tcp_chains(server: Server, proxy: Proxy, push: PushContext, view: TelemetryView,
               warnings: list[str]) -> list[Chain]:
    """TCP, or TLS terminated here: the first `tcp` rule (in VirtualService order) whose match
    holds. Rules with `destinationSubnets` before it add chains matched by destination
    address. No rule: no chain (Istio), and no listener if nothing else is on the port."""
    tls = None
    if server.tls is not None:
        tls = downstream_tls_context(server.tls, http=False, where=server.ref, warnings=warnings)
        if tls is None:
            return []
    sni = server.sni_hosts if server.tls is not None else ()
    chains: list[Chain] = []
    for vs in push.virtual_services():
        if not bound_hosts(vs, server):
            continue
        for i, rule in enumerate(vs.spec.get("tcp", [])):
            if not rule.get("route"):
                continue
            path = f"spec.tcp[{i}]"
            for match in rule.get("match") or [None]:
                if match is not None and not l4_match(match, vs, server):
                    continue
                owner = f"{vs.ref} {path}"
                clusters, stat = _forward(rule["route"], vs, server, path, proxy, push, warnings)
                subnets = _subnets(match, owner, warnings)
                chains.append(_chain(owner, clusters, stat, push.mesh, view, server_names=sni, prefix_ranges=subnets,
                                     tls=tls))
                if not subnets:
                    return chains
    if not chains:
        warnings.append(f"{server.ref}: no VirtualService tcp route is bound to it; port {server.number} "
                        "gets no filter chain for it")
    return chains


def passthrough_chains(server: Server, proxy: Proxy, push: PushContext, view: TelemetryView,
                       warnings: list[str]) -> list[Chain]:
    """PASSTHROUGH: a chain per `tls` rule match, matched by its `sniHosts`; Envoy never
    decrypts, so the client's TLS session ends at the upstream."""
    chains: list[Chain] = []
    for vs in push.virtual_services():
        if not bound_hosts(vs, server):
            continue
        for i, rule in enumerate(vs.spec.get("tls", [])):
            if not rule.get("route"):
                continue
            path = f"spec.tls[{i}]"
            for j, match in enumerate(rule.get("match", [])):
                if not l4_match(match, vs, server):
                    continue
                owner = f"{vs.ref} {path}.match[{j}]"
                clusters, stat = _forward(rule["route"], vs, server, path, proxy, push, warnings)
                chains.append(_chain(owner, clusters, stat, push.mesh, view,
                                     server_names=tuple(match.get("sniHosts", [])),
                                     prefix_ranges=_subnets(match, owner, warnings)))
    if not chains:
        warnings.append(f"{server.ref}: no VirtualService tls route is bound to it; port {server.number} "
                        "gets no filter chain for it")
    return chains


def auto_passthrough_chains(server: Server, push: PushContext, view: TelemetryView) -> list[Chain]:
    """AUTO_PASSTHROUGH: for every mesh service (and DestinationRule subset) under the server's
    hosts, a chain matching the SNI `outbound_.<port>_.<subset>_.<host>` and Istio's mTLS
    ALPNs, forwarding to that cluster."""
    chains: list[Chain] = []
    for service in sorted(push.services.values(), key=lambda s: s.hostname):
        if service.mesh_external or not any(host_matches(h, service.hostname) for h in server.sni_hosts):
            continue
        rule = push.destination_rule(service.hostname)
        subsets = [""] + [s.get("name", "") for s in (rule.spec.get("subsets", []) if rule else [])]
        for port in service.ports:
            if port.protocol == Protocol.UDP:
                continue
            for subset in subsets:
                cluster = names.outbound_cluster(port.number, subset, service.hostname)
                chains.append(Chain(
                    owner=f"{server.ref} ({cluster})",
                    filters=[tcp_proxy_filter(cluster, [(cluster, 1)], mesh=push.mesh, view=view)],
                    server_names=(names.outbound_sni(port.number, subset, service.hostname),),
                    application_protocols=ISTIO_MTLS_ALPN, clusters={cluster}))
    return chains

