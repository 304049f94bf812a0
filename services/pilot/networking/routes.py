"""VirtualService HTTP rules -> Envoy routes, first match wins (Istio's order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc

from libs.config import Resource
from libs.config.durations import to_seconds
from libs.envoy import duration, pack
from services.pilot.model.mesh import resolve_host
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import cluster_policy, names, route_actions
from services.pilot.networking.route_match import route_match

MESH_GATEWAY = "mesh"


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


def _gateway_refs(references: list[str], namespace: str) -> set[str]:
    return {ref if ref == MESH_GATEWAY or "/" in ref else f"{namespace}/{ref}" for ref in references}


def vs_applies(vs: Resource, gateways: frozenset[str]) -> bool:
    """A VirtualService binds to gateways listed in `gateways:` ("mesh" when empty)."""
    refs = _gateway_refs(vs.spec.get("gateways", []) or [MESH_GATEWAY], vs.namespace)
    return bool(refs & gateways)


def _match_applies(match: dict[str, Any] | None, vs: Resource, ctx: RouteContext) -> bool:
    if match is None:
        return True
    if "port" in match and match["port"] != ctx.port:
        return False
    if match.get("gateways") and not (_gateway_refs(match["gateways"], vs.namespace) & ctx.gateways):
        return False
    if match.get("sourceLabels") and not ctx.proxy.matches(match["sourceLabels"]):
        return False
    return not (match.get("sourceNamespace") and match["sourceNamespace"] != ctx.proxy.namespace)


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


def destination_cluster(destination: dict[str, Any], vs: Resource, ctx: RouteContext) -> tuple[str | None, str]:
    """The cluster a destination names, or (None, why not)."""
    host = resolve_host(destination.get("host", ""), vs.namespace, ctx.push.mesh)
    service = ctx.push.services.get(host)
    if service is None:
        return None, f"host {host} is not a known service"
    number = destination.get("port", {}).get("number")
    if number is None:
        if len(service.ports) == 1:
            number = service.ports[0].number
        elif service.port(ctx.port) is not None:
            number = ctx.port
        else:
            return None, f"host {host} has several ports; the destination must name one"
    if service.port(number) is None:
        return None, f"host {host} has no port {number}"
    subset = destination.get("subset", "")
    if subset:
        rule = ctx.push.destination_rule(host)
        defined = {s.get("name") for s in rule.spec.get("subsets", [])} if rule else set()
        if subset not in defined:
            return None, f"subset {subset} of host {host} is not defined by any DestinationRule"
    return names.outbound_cluster(number, subset, host), ""


def _unroutable(route: rc.Route, vs: Resource, path: str, reason: str, ctx: RouteContext) -> None:
    ctx.warnings.append(f"{vs.ref}: {path}: {reason}; the route answers 503")
    route.direct_response.CopyFrom(route_actions.direct_response(503, f"mizzen: {reason}\n"))


def _route_action(route: rc.Route, http: dict[str, Any], vs: Resource, path: str, ctx: RouteContext) -> None:
    destinations = http.get("route", [])
    action = rc.RouteAction()
    weighted: list[rc.WeightedCluster.ClusterWeight] = []
    for i, target in enumerate(destinations):
        cluster, reason = destination_cluster(target.get("destination", {}), vs, ctx)
        if cluster is None:
            _unroutable(route, vs, f"{path}.route[{i}].destination", reason, ctx)
            return
        weight = rc.WeightedCluster.ClusterWeight(name=cluster)
        weight.weight.value = target.get("weight", 100 if len(destinations) == 1 else 0)
        add, remove = route_actions.header_options(target.get("headers", {}).get("request", {}))
        weight.request_headers_to_add.extend(add)
        weight.request_headers_to_remove.extend(remove)
        add, remove = route_actions.header_options(target.get("headers", {}).get("response", {}))
        weight.response_headers_to_add.extend(add)
        weight.response_headers_to_remove.extend(remove)
        weighted.append(weight)
    plain = len(weighted) == 1 and not (weighted[0].request_headers_to_add or weighted[0].request_headers_to_remove
                                        or weighted[0].response_headers_to_add
                                        or weighted[0].response_headers_to_remove)
    if plain:
        action.cluster = weighted[0].name
    else:
        action.weighted_clusters.clusters.extend(w for w in weighted if w.weight.value > 0 or len(weighted) == 1)
    ctx.clusters.update(w.name for w in weighted)
    # Envoy hashes per route; Istio uses the first destination's consistent-hash policy.
    action.hash_policy.extend(cluster_policy.hash_policies(destination_policy(weighted[0].name, ctx)))
    # Istio disables Envoy's 15 s default route timeout unless the rule sets one.
    action.timeout.CopyFrom(duration(to_seconds(http["timeout"]) if "timeout" in http else 0))
    policy = route_actions.retry_policy(http.get("retries"))
    if policy is not None:
        action.retry_policy.CopyFrom(policy)
    if "rewrite" in http:
        route_actions.rewrite(action, http["rewrite"])
    mirrors = list(http.get("mirrors", []))
    if "mirror" in http:
        percent = http.get("mirrorPercentage", {}).get("value", http.get("mirrorPercent", 100))
        mirrors.insert(0, {"destination": http["mirror"], "percentage": {"value": percent}})
    for i, mirror in enumerate(mirrors):
        cluster, reason = destination_cluster(mirror.get("destination", {}), vs, ctx)
        if cluster is None:
            ctx.warnings.append(f"{vs.ref}: {path}.mirror[{i}]: {reason}; not mirrored")
            continue
        ctx.clusters.add(cluster)
        policy_entry = action.request_mirror_policies.add(cluster=cluster)
        percent = mirror.get("percentage", {}).get("value", 100)
        policy_entry.runtime_fraction.default_value.CopyFrom(route_actions.fractional(percent))
    # Upgrades (WebSocket) are allowed on every route, as in Istio.
    action.upgrade_configs.add(upgrade_type="websocket")
    route.route.CopyFrom(action)


def http_routes(vs: Resource, ctx: RouteContext) -> list[rc.Route]:
    routes: list[rc.Route] = []
    for i, http in enumerate(vs.spec.get("http", [])):
        path = f"spec.http[{i}]"
        for match in http.get("match") or [None]:
            if not _match_applies(match, vs, ctx):
                continue
            route = rc.Route(match=route_match(match))
            route.name = (http.get("name", "") + "." + match.get("name", "")).strip(".") if match else \
                http.get("name", "")
            if "redirect" in http:
                route.redirect.CopyFrom(route_actions.redirect(http["redirect"]))
            elif "directResponse" in http:
                body = http["directResponse"].get("body", {}).get("string", "")
                route.direct_response.CopyFrom(route_actions.direct_response(http["directResponse"]["status"], body))
            elif "delegate" in http:
                _unroutable(route, vs, f"{path}.delegate", "delegate VirtualServices are not supported yet", ctx)
            else:
                _route_action(route, http, vs, path, ctx)
            if "fault" in http:
                route.typed_per_filter_config[route_actions.FAULT_FILTER].CopyFrom(
                    pack(route_actions.fault(http["fault"])))
            if "corsPolicy" in http:
                route.typed_per_filter_config[route_actions.CORS_FILTER].CopyFrom(
                    pack(route_actions.cors(http["corsPolicy"])))
            headers = http.get("headers", {})
            add, remove = route_actions.header_options(headers.get("request", {}))
            route.request_headers_to_add.extend(add)
            route.request_headers_to_remove.extend(remove)
            add, remove = route_actions.header_options(headers.get("response", {}))
            route.response_headers_to_add.extend(add)
            route.response_headers_to_remove.extend(remove)
            routes.append(route)
    return routes
