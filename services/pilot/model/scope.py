"""What one proxy may see: exportTo and the Sidecar resource's egress hosts (Istio's
SidecarScope).  Translation reads services and VirtualServices through this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.config import Resource
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.services import Service
from services.pilot.model.telemetry import NO_TELEMETRY, TelemetryView, telemetry_for


def exported_to(export_to: tuple[str, ...] | list[str], owner_namespace: str, client_namespace: str) -> bool:
    """Istio's exportTo: empty or `*` is everyone, `.` the owner's namespace, `~` no one."""
    if not export_to or "*" in export_to:
        return True
    if "." in export_to and owner_namespace == client_namespace:
        return True
    return client_namespace in export_to


def host_matches(pattern: str, host: str) -> bool:
    """`*` matches all, `*.example.com` its subdomains, anything else exactly."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:])
    return pattern == host


@dataclass(frozen=True)
class EgressHost:
    namespace: str
    host: str

    def matches(self, namespace: str, host: str) -> bool:
        if self.namespace == "~":
            return False
        if self.namespace not in ("*", namespace):
            return False
        return host_matches(self.host, host) or (host.startswith("*") and host_matches(host, self.host))


def select_sidecar(proxy: Proxy, push: PushContext) -> Resource | None:
    """Istio's precedence: a Sidecar in the proxy's namespace selecting it, then one in its
    namespace without a selector, then the root namespace's default."""
    candidates = push.config.of_kind("Sidecar")
    local = [s for s in candidates if s.namespace == proxy.namespace]
    for sidecar in local:
        selector = sidecar.spec.get("workloadSelector", {}).get("labels")
        if selector and proxy.matches(selector):
            return sidecar
    for sidecar in local:
        if not sidecar.spec.get("workloadSelector"):
            return sidecar
    for sidecar in candidates:
        if sidecar.namespace == push.mesh.root_namespace and not sidecar.spec.get("workloadSelector"):
            return sidecar
    return None


@dataclass(frozen=True)
class ProxyScope:
    proxy: Proxy
    push: PushContext
    sidecar: Resource | None
    egress: tuple[EgressHost, ...] | None
    # What the Telemetry API says of its access logs and traces.
    telemetry: TelemetryView = NO_TELEMETRY

    @classmethod
    def build(cls, proxy: Proxy, push: PushContext) -> ProxyScope:
        sidecar = select_sidecar(proxy, push)
        egress: tuple[EgressHost, ...] | None = None
        if sidecar is not None and sidecar.spec.get("egress"):
            hosts: list[EgressHost] = []
            for listener in sidecar.spec["egress"]:
                for entry in listener.get("hosts", []):
                    namespace, _, host = entry.partition("/")
                    hosts.append(EgressHost(sidecar.namespace if namespace == "." else namespace, host))
            egress = tuple(hosts)
        return cls(proxy, push, sidecar, egress, telemetry_for(proxy, push))

    def _egress_allows(self, namespace: str, host: str) -> bool:
        return self.egress is None or any(e.matches(namespace, host) for e in self.egress)

    def services(self) -> list[Service]:
        sidecar = self.sidecar.key if self.sidecar is not None else None
        return self.push.derived(("visible-services", self.proxy.namespace, sidecar), self._visible)

    def _visible(self) -> list[Service]:
        visible = [
            s for s in self.push.services.values()
            if exported_to(s.export_to, s.namespace, self.proxy.namespace)
            and self._egress_allows(s.namespace, s.hostname)
        ]
        return sorted(visible, key=lambda s: s.hostname)

    def virtual_service_visible(self, vs: Resource) -> bool:
        if not exported_to(vs.spec.get("exportTo", []), vs.namespace, self.proxy.namespace):
            return False
        return self.egress is None or any(self._egress_allows(vs.namespace, h) for h in vs.spec.get("hosts", []))

    @property
    def outbound_policy(self) -> str:
        if self.sidecar is not None:
            mode = self.sidecar.spec.get("outboundTrafficPolicy", {}).get("mode")
            if mode:
                return str(mode)
        return self.push.mesh.outbound_traffic_policy

    @property
    def ingress(self) -> list[dict[str, Any]]:
        return list(self.sidecar.spec.get("ingress", [])) if self.sidecar is not None else []
