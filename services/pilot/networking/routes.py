"""VirtualService HTTP rules -> Envoy routes, in rule order (first match wins), as
Istio's BuildHTTPRoutesForVirtualService and translateRoute build them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc

from libs.config import Resource
from libs.envoy import pack
from services.pilot.model.mesh import resolve_host
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import cluster_policy, names, route_actions
from services.pilot.networking.route_match import is_catch_all, route_match

MESH_GATEWAY = "mesh"
# Istio raises Envoy's 4 KB limit on direct response bodies to what validation allows.
MAX_DIRECT_RESPONSE_BODY_BYTES = 1024 * 1024


@dataclass
class RouteContext:
    """What one route configuration is being built for, and what it collects."""

    push: PushContext
    proxy: Proxy
    # The listener port the routes serve.
    port: int
    # `ns/name` of the gateways this config serves, or {"mesh"} for sidecars.
    gateways: frozenset[str]
    clusters: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    # Whether the listener terminates TLS (the default scheme of redirects).
    tls: bool = False


def _gateway_refs(references: list[str], namespace: str) -> set[str]:
    return {ref if ref == MESH_GATEWAY or "/" in ref else f"{namespace}/{ref}" for ref in references}


def vs_applies(vs: Resource, gateways: frozenset[str]) -> bool:
    """A VirtualService binds to gateways listed in `gateways:` ("mesh" when empty)."""
    refs = _gateway_refs(vs.spec.get("gateways", []) or [MESH_GATEWAY], vs.namespace)
    return bool(refs & gateways)


def _match_applies(match: dict[str, Any] | None, vs: Resource, ctx: RouteContext) -> bool:
    """Istio's port check and sourceMatchHTTP: a match naming gateways applies on those
    gateways (its source labels are then not consulted); otherwise source labels and
    source namespace must fit the proxy."""
    if match is None:
        return True
    if match.get("port") and match["port"] != ctx.port:
        return False
    if match.get("gateways"):
        return bool(_gateway_refs(match["gateways"], vs.namespace) & ctx.gateways)
    if not ctx.proxy.matches(match.get("sourceLabels", {})):
        return False
    return not match.get("sourceNamespace") or match["sourceNamespace"] == ctx.proxy.namespace


def destination_policy(cluster: str, ctx: RouteContext) -> dict[str, Any]:
    """The DestinationRule traffic policy in force for an `outbound|port|subset|host` cluster."""
    parsed = names.parse_outbound_cluster(cluster)
    if parsed is None:
        return {}
    port, subset, host = parsed
    rule = ctx.push.destination_rule(host)
    if rule is None:
        return {}
    subset_policy = next((s.get("trafficPolicy") for s in rule.spec.get("subsets", []) if s.get("name") == subset),
                         None)
    return cluster_policy.merged_policy(rule.spec, subset_policy, port)


def _cluster_name(destination: dict[str, Any], vs: Resource, ctx: RouteContext) -> str:
    """Istio's GetDestinationCluster: the named port, else the service's only port, else
    the listener port."""
    host = resolve_host(destination.get("host", ""), vs.namespace, ctx.push.mesh)
    service = ctx.push.services.get(host)
    number = destination.get("port", {}).get("number")
    if number is None:
        number = service.ports[0].number if service is not None and len(service.ports) == 1 else ctx.port
    return names.outbound_cluster(number, destination.get("subset", ""), host)


def destination_cluster(destination: dict[str, Any], vs: Resource, ctx: RouteContext) -> tuple[str | None, str]:
    """The cluster a destination names, or (None, why there is no such cluster)."""
    host = resolve_host(destination.get("host", ""), vs.namespace, ctx.push.mesh)
    service = ctx.push.services.get(host)
    if service is None:
        return None, f"host {host} is not a known service"
    cluster = _cluster_name(destination, vs, ctx)
    number = int(cluster.split("|")[1])
    if service.port(number) is None:
        if "port" not in destination and len(service.ports) > 1:
            return None, f"host {host} has several ports and none is {ctx.port}; the destination must name one"
        return None, f"host {host} has no port {number}"
    subset = destination.get("subset", "")
    if subset:
        rule = ctx.push.destination_rule(host)
        defined = {s.get("name") for s in rule.spec.get("subsets", [])} if rule else set()
        if subset not in defined:
            return None, f"subset {subset} of host {host} is not defined by any DestinationRule"
    return cluster, ""


def _unroutable(route: rc.Route, vs: Resource, path: str, reason: str, ctx: RouteContext) -> None:
    ctx.warnings.append(f"{vs.ref}: {path}: {reason}; the route answers 503")
    route.direct_response.CopyFrom(route_actions.direct_response(503, {"string": f"mizzen: {reason}\n"}))


def _add_mirrors(action: rc.RouteAction, http: dict[str, Any], vs: Resource, path: str, ctx: RouteContext) -> None:
    mirrors: list[tuple[str, dict[str, Any], Any]] = []
    if "mirror" in http:
        fraction = route_actions.mirror_fraction(http.get("mirrorPercentage"), http.get("mirrorPercent"))
        mirrors.append((f"{path}.mirror", http["mirror"], fraction))
    for i, mirror in enumerate(http.get("mirrors", [])):
        if "destination" in mirror:
            fraction = route_actions.mirror_fraction(mirror.get("percentage"))
            mirrors.append((f"{path}.mirrors[{i}]", mirror["destination"], fraction))
    for where, destination, fraction in mirrors:
        if fraction is None:
            continue
        cluster, reason = destination_cluster(destination, vs, ctx)
        if cluster is None:
            # Istio mirrors to a cluster Envoy does not have, which drops every copy.
            ctx.warnings.append(f"{vs.ref}: {where}: {reason}; not mirrored")
            continue
        ctx.clusters.add(cluster)
        action.request_mirror_policies.append(route_actions.mirror_policy(cluster, fraction))


def _hash_policies(cluster: str, ctx: RouteContext) -> list[rc.RouteAction.HashPolicy]:
    return cluster_policy.hash_policies(destination_policy(cluster, ctx))


def _single_destination(route: rc.Route, action: rc.RouteAction, target: dict[str, Any], vs: Resource, path: str,
                        ctx: RouteContext) -> bool:
    """Route to one cluster; its header operations join the route's. False if unroutable."""
    cluster, reason = destination_cluster(target.get("destination", {}), vs, ctx)
    if cluster is None:
        _unroutable(route, vs, f"{path}.route[0].destination", reason, ctx)
        return False
    action.cluster = cluster
    ctx.clusters.add(cluster)
    ops = route_actions.header_operations(target.get("headers"))
    ops.apply_to(route)
    if ops.authority and not action.host_rewrite_literal:
        action.host_rewrite_literal = ops.authority
    action.hash_policy.extend(_hash_policies(cluster, ctx))
    return True


def _weighted_destinations(route: rc.Route, action: rc.RouteAction, targets: list[dict[str, Any]], vs: Resource,
                           path: str, ctx: RouteContext) -> bool:
    """Split by weight (0-weight destinations dropped).  A destination pilot cannot resolve
    keeps its share and names a cluster Envoy does not have, so that share answers 503,
    as in Istio; when none resolves the route answers 503. False if unroutable."""
    weights: list[rc.WeightedCluster.ClusterWeight] = []
    resolved = 0
    for i, target in enumerate(targets):
        if not target.get("weight"):
            continue
        destination = target.get("destination", {})
        cluster, reason = destination_cluster(destination, vs, ctx)
        if cluster is None:
            ctx.warnings.append(f"{vs.ref}: {path}.route[{i}].destination: {reason}; its share of the traffic "
                                "answers 503")
            cluster = _cluster_name(destination, vs, ctx)
        else:
            resolved += 1
            ctx.clusters.add(cluster)
            action.hash_policy.extend(_hash_policies(cluster, ctx))
        weight = rc.WeightedCluster.ClusterWeight(name=cluster)
        weight.weight.value = target["weight"]
        ops = route_actions.header_operations(target.get("headers"))
        ops.apply_to(weight)
        if ops.authority:
            weight.host_rewrite_literal = ops.authority
        weights.append(weight)
    if not resolved:
        action.ClearField("hash_policy")
        _unroutable(route, vs, f"{path}.route", "no destination is a known service", ctx)
        return False
    action.weighted_clusters.clusters.extend(weights)
    return True


def _route_action(route: rc.Route, http: dict[str, Any], vs: Resource, path: str, authority: str,
                  ctx: RouteContext) -> None:
    action = rc.RouteAction()
    route_actions.set_timeout(action, http.get("timeout"))
    if "rewrite" in http:
        route_actions.rewrite(action, http["rewrite"])
        authority = http["rewrite"].get("authority") or authority
    if authority:
        action.host_rewrite_literal = authority
    _add_mirrors(action, http, vs, path, ctx)
    targets = http.get("route", [])
    if not targets:
        _unroutable(route, vs, f"{path}.route", "the rule has no destination", ctx)
        return
    if len(targets) == 1:
        routable = _single_destination(route, action, targets[0], vs, path, ctx)
    else:
        routable = _weighted_destinations(route, action, targets, vs, path, ctx)
    if not routable:
        return
    # With consistent hashing a retry must stay on the hashed host (no previous-hosts predicate).
    consistent_hash = len(targets) == 1 and bool(action.hash_policy)
    retry = route_actions.retry_policy(http.get("retries"), consistent_hash=consistent_hash)
    if retry is not None:
        action.retry_policy.CopyFrom(retry)
    route.route.CopyFrom(action)


def _operation(route: rc.Route, vs: Resource, port: int) -> str:
    """Istio's GetRouteOperation: the tracing span name of the route."""
    match = route.match
    specifier = match.WhichOneof("path_specifier")
    path = {"prefix": match.prefix + "*", "path": match.path, "safe_regex": match.safe_regex.regex}.get(
        specifier or "", "/*")
    parsed = names.parse_outbound_cluster(route.route.cluster) if route.HasField("route") else None
    if parsed is not None:
        return f"{parsed[2]}:{parsed[0]}{path}"
    return f"{vs.name}:{port}{path}"


def _translate(http: dict[str, Any], match: dict[str, Any] | None, vs: Resource, path: str,
               ctx: RouteContext) -> rc.Route | None:
    if not _match_applies(match, vs, ctx):
        return None
    name = http.get("name", "")
    if match is not None and match.get("name"):
        name = f"{name}.{match['name']}"
    route = rc.Route(name=name, match=route_match(match))
    route.metadata.filter_metadata["istio"].update(
        {"config": f"/apis/networking.istio.io/v1alpha3/namespaces/{vs.namespace}/virtual-service/{vs.name}"})
    if match is not None and match.get("statPrefix"):
        route.stat_prefix = match["statPrefix"]
    ops = route_actions.header_operations(http.get("headers"))
    ops.apply_to(route)
    if "redirect" in http:
        action = route_actions.redirect(http["redirect"], listener_port=ctx.port, tls=ctx.tls)
        if action is None:
            ctx.warnings.append(f"{vs.ref}: {path}.redirect: redirectCode {http['redirect'].get('redirectCode')} "
                                "is not supported; the rule is skipped")
            return None
        route.redirect.CopyFrom(action)
    elif "directResponse" in http:
        spec = http["directResponse"]
        route.direct_response.CopyFrom(route_actions.direct_response(spec.get("status", 200), spec.get("body")))
    elif "delegate" in http:
        _unroutable(route, vs, f"{path}.delegate", "delegate VirtualServices are not supported yet", ctx)
    else:
        _route_action(route, http, vs, path, ops.authority, ctx)
    route.decorator.operation = _operation(route, vs, ctx.port)
    if "fault" in http:
        fault_warnings: list[str] = []
        fault = route_actions.fault(http["fault"], fault_warnings)
        ctx.warnings.extend(f"{vs.ref}: {path}.{w}" for w in fault_warnings)
        if fault is not None:
            route.typed_per_filter_config[route_actions.FAULT_FILTER].CopyFrom(pack(fault))
    if "corsPolicy" in http:
        route.typed_per_filter_config[route_actions.CORS_FILTER].CopyFrom(pack(route_actions.cors(http["corsPolicy"])))
    return route


def http_routes(vs: Resource, ctx: RouteContext) -> list[rc.Route]:
    """Routes for every rule and match that apply here; nothing after a catch-all route
    is emitted (Envoy would never reach it)."""
    routes: list[rc.Route] = []
    for i, http in enumerate(vs.spec.get("http", [])):
        path = f"spec.http[{i}]"
        matches = http.get("match") or [None]
        catch_all = not http.get("match")
        for match in matches:
            route = _translate(http, match, vs, path, ctx)
            if route is None:
                continue
            routes.append(route)
            if is_catch_all(route):
                catch_all = True
                break
        if catch_all:
            break
    return routes


def combine_vhost_routes(merged: list[rc.Route]) -> list[rc.Route]:
    """Routes of several VirtualServices sharing one virtual host: in order, but every
    catch-all route after all the others (Istio's CombineVHostRoutes), so that one
    VirtualService's catch-all does not hide another's specific routes."""
    return [r for r in merged if not is_catch_all(r)] + [r for r in merged if is_catch_all(r)]
