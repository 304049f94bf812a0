"""VirtualService `tcp` routes for a sidecar's outbound TCP listeners."""

from __future__ import annotations

from services.pilot.model.mesh import resolve_host
from services.pilot.model.scope import ProxyScope, host_matches
from services.pilot.model.services import Service, ServicePort
from services.pilot.networking import names
from services.pilot.networking.routes import MESH_GATEWAY, vs_applies


def tcp_destinations(service: Service, port: ServicePort, scope: ProxyScope,
                     warnings: list[str]) -> list[tuple[str, int]]:
    """(cluster, weight) for the first matching TCP route of the first VirtualService
    covering the service, else the service port's own cluster."""
    for vs in scope.push.virtual_services():
        if not vs_applies(vs, frozenset({MESH_GATEWAY})) or not scope.virtual_service_visible(vs):
            continue
        hosts = [resolve_host(h, vs.namespace, scope.push.mesh) for h in vs.spec.get("hosts", [])]
        if not any(host_matches(h, service.hostname) for h in hosts):
            continue
        for i, rule in enumerate(vs.spec.get("tcp", [])):
            if not _matches(rule.get("match", []), port.number, scope):
                continue
            clusters: list[tuple[str, int]] = []
            for j, target in enumerate(rule.get("route", [])):
                destination = target.get("destination", {})
                host = resolve_host(destination.get("host", ""), vs.namespace, scope.push.mesh)
                target_service = scope.push.services.get(host)
                number = destination.get("port", {}).get("number") or (
                    target_service.ports[0].number if target_service and len(target_service.ports) == 1
                    else port.number)
                if target_service is None or target_service.port(number) is None:
                    warnings.append(f"{vs.ref}: spec.tcp[{i}].route[{j}]: no service {host} port {number}; skipped")
                    continue
                subset = destination.get("subset", "")
                rule_for_host = scope.push.destination_rule(host)
                if subset and (rule_for_host is None or subset not in
                               {s.get("name") for s in rule_for_host.spec.get("subsets", [])}):
                    warnings.append(f"{vs.ref}: spec.tcp[{i}].route[{j}]: subset {subset} of {host} is not defined; "
                                    "skipped")
                    continue
                clusters.append((names.outbound_cluster(number, subset, host),
                                 target.get("weight", 100)))
            if clusters:
                return clusters
    return [(names.outbound_cluster(port.number, "", service.hostname), 100)]


def _matches(matches: list[dict[str, object]], port: int, scope: ProxyScope) -> bool:
    if not matches:
        return True
    for match in matches:
        if "port" in match and match["port"] != port:
            continue
        labels = match.get("sourceLabels")
        if isinstance(labels, dict) and not scope.proxy.matches(labels):
            continue
        return True
    return False
