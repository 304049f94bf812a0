"""`x describe pod|service`'s text, in istioctl's order and words: the pod, each service
that selects it with the DestinationRule (and matching subsets) and VirtualService that
shape its traffic, the effective PeerAuthentication, the AuthorizationPolicies, and the
gateways that expose it.  Pure: what describe.py fetched in, text out.

istioctl reads the rules' names from the proxy's Envoy config (route and cluster
metadata) and the rules themselves from Kubernetes; here the names come from pilot's view
of the proxy (its config dump and config origins) and the rules from galley, so a rule
pilot still serves but galley no longer holds shows as istioctl's "Proxy is stale" warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tools.mizzenctl import authz_check, config_dump
from tools.mizzenctl.describe_policies import applied, client_tls, effective_mtls, policy_name
from tools.mizzenctl.describe_rules import (
    LEVEL1,
    destination_rule_lines,
    matching_subsets,
    selects,
    virtual_service_lines,
)
from tools.mizzenctl.envoy_tables import istio_config

__all__ = ["SEPARATOR", "Mesh", "ProxyView", "pod_text", "service_text", "services_of"]

Json = dict[str, Any]
SEPARATOR = "--------------------"


@dataclass(frozen=True)
class Mesh:
    """galley's config by kind, and the mesh settings describe needs."""

    config: dict[str, list[Json]] = field(default_factory=dict)
    root_namespace: str = "istio-system"
    domain: str = "cluster.local"
    trust_domain: str = "cluster.local"

    def of(self, kind: str) -> list[Json]:
        return self.config.get(kind, [])

    def find(self, kind: str, name: str) -> Json | None:
        """A resource by `name.namespace`."""
        return next((r for r in self.of(kind) if policy_name(r) == name), None)


@dataclass(frozen=True)
class ProxyView:
    """One connected proxy: its syncz row, and pilot's config dump and origins for it."""

    row: Json
    dump: Json = field(default_factory=dict)
    origins: Json = field(default_factory=dict)

    @property
    def pod(self) -> str:
        return str(self.row.get("name", "")).rsplit(".", 1)[0]

    @property
    def namespace(self) -> str:
        return str(self.row.get("name", "")).rsplit(".", 1)[-1]

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.row.get("labels") or {})


def kname(name: str, namespace: str, current: str) -> str:
    """istioctl's `name[.namespace]`: the namespace only when it is not the current one."""
    return name if namespace == current else f"{name}.{namespace}"


def short(name: str, current: str) -> str:
    """`name.namespace` as istioctl names a resource: kname of it."""
    base, _, namespace = name.rpartition(".")
    return kname(base, namespace, current) if base else name


def service_name(service: Json, domain: str) -> str:
    host = str(service["hostname"])
    suffix = f".{service.get('namespace', '')}.svc.{domain}"
    return host.removesuffix(suffix) if host.endswith(suffix) else host


def target_ports(service: Json, ip: str) -> dict[int, int]:
    """{service port: the port its endpoints at `ip` take traffic on}."""
    found: dict[int, int] = {}
    for port, endpoints in (service.get("endpoints") or {}).items():
        for endpoint in endpoints:
            address, _, target = str(endpoint).rpartition(":")
            if address == ip and target.isdigit():
                found[int(port)] = int(target)
    return found


def services_of(services: list[Json], ip: str) -> list[Json]:
    """The services with an endpoint at `ip`: Istio's services that select the pod."""
    return [s for s in sorted(services, key=lambda s: str(s["hostname"])) if target_ports(s, ip)]


def _cluster(dump: Json, host: str, port: int) -> Json | None:
    name = f"outbound|{port}||{host}"
    return next((c for c in config_dump.clusters(dump) if c.get("name") == name), None)


def _route_cluster(route: Json) -> str:
    action = route.get("route") or {}
    if "cluster" in action:
        return str(action["cluster"])
    clusters = (action.get("weighted_clusters") or {}).get("clusters") or []
    return str(clusters[0].get("name", "")) if clusters else ""


def virtual_service_for(dump: Json, host: str, port: int) -> str:
    """`name.namespace` of the VirtualService behind the routes to host:port in a proxy's
    config (Istio's route metadata), "" when none shapes them."""
    target = re.compile(rf"outbound\|{port}\|[^|]*\|{re.escape(host)}$")
    for config in config_dump.route_configs(dump, static=False):
        if str(config.get("name", "")).startswith("inbound|"):
            continue
        for vhost in config.get("virtual_hosts", []):
            for route in vhost.get("routes", []):
                named = istio_config(route.get("metadata"))
                if named and target.match(_route_cluster(route)):
                    return named
    return ""


def destination_rule_for(origins: Json, host: str, port: int) -> str:
    rules = origins.get("destination_rules") or {}
    return str(rules.get(f"outbound|{port}||{host}", ""))


def _service_lines(service: Json, view: ProxyView, mesh: Mesh, pods_labels: list[dict[str, str]],
                   current: str) -> list[str]:
    host = str(service["hostname"])
    lines = [f"Service: {kname(service_name(service, mesh.domain), service.get('namespace', ''), current)}"]
    targets = target_ports(service, str(view.row.get("ip", "")))
    ports = service.get("ports") or []
    for port in ports:
        if port["port"] in targets:
            lines.append(f"{LEVEL1}Port: {port.get('name', '')} {port['port']}/{port.get('protocol', '')} targets "
                         f"pod port {targets[port['port']]}")
            lines.append(f"{LEVEL1}Clients' mTLS: {client_tls(_cluster(view.dump, host, port['port']))}")
    several = len(ports) > 1
    indent = LEVEL1 if several else ""
    for port in ports:
        number = int(port["port"])
        if several:
            lines.append(f"{number}:")
        rule_name = destination_rule_for(view.origins, host, number)
        rule = mesh.find("DestinationRule", rule_name) if rule_name else None
        matching: list[str] = []
        other: list[str] = []
        if rule is not None:
            lines.extend(destination_rule_lines(rule, short(rule_name, current), pods_labels, indent))
            matching, other = matching_subsets(rule, pods_labels)
        elif rule_name:
            lines.append(f"WARNING: Proxy is stale; it references to non-existent destination rule {rule_name}")
        vs_name = virtual_service_for(view.dump, host, number)
        vs = mesh.find("VirtualService", vs_name) if vs_name else None
        if vs is not None:
            lines.extend(virtual_service_lines(vs, short(vs_name, current), host, matching, other,
                                               short(rule_name, current) if rule else None, mesh.domain, indent))
        elif vs_name:
            lines.append(f"WARNING: Proxy is stale; it references to non-existent virtual service {vs_name}")
    return lines


def _peer_authentication_lines(view: ProxyView, mesh: Mesh) -> list[str]:
    policies = mesh.of("PeerAuthentication")
    effective = effective_mtls(policies, view.namespace, view.labels, mesh.root_namespace)
    lines = ["Effective PeerAuthentication:", f"{LEVEL1}Workload mTLS mode: {effective.mode}"]
    if effective.per_port:
        lines.append(f"{LEVEL1}Port Level mTLS mode:")
        lines.extend(f"{LEVEL1}{LEVEL1}{port}: {mode}" for port, mode in effective.per_port.items())
    matched = applied(policies, view.namespace, view.labels, mesh.root_namespace)
    if matched:
        lines += ["Applied PeerAuthentication:", f"{LEVEL1}{', '.join(policy_name(p) for p in matched)}"]
    return lines


def _authorization_lines(view: ProxyView, mesh: Mesh) -> list[str]:
    """The AuthorizationPolicies galley holds for this workload, each with its action, and
    any the proxy's RBAC filters disagree about (pilot's view, as `x authz check` reads it)."""
    matched = applied(mesh.of("AuthorizationPolicy"), view.namespace, view.labels, mesh.root_namespace)
    enforced = {row.policy for row in authz_check.policy_rows(view.dump)} - {authz_check.ANONYMOUS}
    if not matched and not enforced:
        return ["No AuthorizationPolicies apply"]
    lines = ["Applied AuthorizationPolicy:"] if matched else []
    for policy in matched:
        action = str((policy.get("spec") or {}).get("action") or "ALLOW")
        lines.append(f"{LEVEL1}{policy_name(policy)} ({action})")
        if policy_name(policy) not in enforced and view.dump:
            lines.append(f"{LEVEL1}{LEVEL1}WARNING: not in the proxy's RBAC filters (stale, or a policy with "
                         "no rules for this workload)")
    for name in sorted(enforced - {policy_name(p) for p in matched}):
        lines.append(f"WARNING: Proxy is stale; it enforces non-existent authorization policy {name}")
    return lines


def _exposure(gateway_view: ProxyView, gateway: Json) -> list[str]:
    """istioctl's "Exposed on Ingress Gateway http://IP[:port]", one per HTTP server port."""
    lines = []
    ingress = gateway_view.labels.get("istio") == "ingressgateway"
    for server in (gateway.get("spec") or {}).get("servers") or []:
        port = server.get("port") or {}
        if str(port.get("protocol", "")).upper() not in ("HTTP", "HTTP2"):
            continue
        number = int(port.get("number", 0))
        suffix = "" if number == 80 else f":{number}"
        lines.append(f"Exposed on {'Ingress ' if ingress else ''}Gateway http://{gateway_view.row.get('ip', '')}"
                     f"{suffix}")
    return lines


def _gateway_lines(services: list[Json], gateways: list[ProxyView], mesh: Mesh, pods_labels: list[dict[str, str]],
                   current: str) -> list[str]:
    lines: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for gateway_view in gateways:
        for service in services:
            host = str(service["hostname"])
            for port in service.get("ports") or []:
                vs_name = virtual_service_for(gateway_view.dump, host, int(port["port"]))
                vs = mesh.find("VirtualService", vs_name) if vs_name else None
                if vs is None:
                    if vs_name:
                        lines.append(f"WARNING: Proxy is stale; it references to non-existent virtual service "
                                     f"{vs_name}")
                    continue
                rule_name = destination_rule_for(gateway_view.origins, host, int(port["port"]))
                rule = mesh.find("DestinationRule", rule_name) if rule_name else None
                matching, other = matching_subsets(rule, pods_labels)
                namespace = vs["metadata"].get("namespace", "")
                for reference in (vs.get("spec") or {}).get("gateways") or []:
                    if reference == "mesh":
                        continue
                    gw_ns, _, gw_name = reference.rpartition("/")
                    name = f"{gw_name}.{gw_ns or namespace}"
                    key = (str(gateway_view.row.get("proxy")), name, vs_name)
                    gateway = mesh.find("Gateway", name)
                    if gateway is None:
                        lines.append(f"WARNING: Proxy is stale; it references to non-existent gateway {name}")
                        continue
                    selector = (gateway.get("spec") or {}).get("selector") or {}
                    if key in seen or not selects(selector, gateway_view.labels):
                        continue
                    seen.add(key)
                    lines.append(SEPARATOR)
                    lines.extend(_exposure(gateway_view, gateway))
                    lines.append(f"Gateway: {kname(gw_name, gw_ns or namespace, current)}")
                    lines.extend(virtual_service_lines(vs, short(vs_name, current), host, matching, other,
                                                       short(rule_name, current) if rule else None, mesh.domain))
    return lines


def pod_text(view: ProxyView, services: list[Json], mesh: Mesh, gateways: list[ProxyView], current: str) -> str:
    """istioctl's `x describe pod`, for a proxy pilot knows."""
    row = view.row
    lines = [f"Pod: {kname(view.pod, view.namespace, current)}"]
    selected = services_of(services, str(row.get("ip", "")))
    ports = sorted({target for s in selected for target in target_ports(s, str(row.get("ip", ""))).values()})
    lines.append(f"{LEVEL1}Pod Ports: {', '.join(str(p) for p in ports)}" if ports
                 else f"{LEVEL1}Pod does not expose ports")
    if row.get("service_account"):
        lines.append(f"{LEVEL1}Identity: spiffe://{mesh.trust_domain}/ns/{view.namespace}/sa/"
                     f"{row['service_account']}")
    if row.get("cluster_id"):
        lines.append(f"{LEVEL1}Registry: {row['cluster_id']}")
    if not selected:
        lines.append(f"Warning: No services select pod {kname(view.pod, view.namespace, current)} (no ServiceEntry "
                     f"or Kubernetes Service has an endpoint at {row.get('ip', '')})")
    pods_labels = [view.labels]
    for service in selected:
        lines.append(SEPARATOR)
        lines.extend(_service_lines(service, view, mesh, pods_labels, current))
    lines.append(SEPARATOR)
    lines.extend(_peer_authentication_lines(view, mesh))
    lines.append(SEPARATOR)
    lines.extend(_authorization_lines(view, mesh))
    lines.extend(_gateway_lines(selected, gateways, mesh, pods_labels, current))
    return "\n".join(lines) + "\n"


def service_text(service: Json, pods: list[ProxyView], mesh: Mesh, gateways: list[ProxyView], current: str) -> str:
    """istioctl's `x describe service`: described from its first pod's proxy, subsets
    matched against every pod's labels."""
    name = kname(service_name(service, mesh.domain), str(service.get("namespace", "")), current)
    if not pods:
        return f'Service "{name}" has no pods.\n'
    pods_labels = [pod.labels for pod in pods]
    lines = _service_lines(service, pods[0], mesh, pods_labels, current)
    lines.extend(_gateway_lines([service], gateways, mesh, pods_labels, current))
    return "\n".join(lines) + "\n"
