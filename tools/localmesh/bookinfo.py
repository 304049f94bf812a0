"""Bookinfo in the local mesh: its workloads, their loopback addresses, and the
"platform" config a Kubernetes cluster would hold (Services become ServiceEntries that
select the workloads the agents register)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from libs.inject import DEFAULT_STATUS_PORT, rewrite_probes

APP_PORT_OFFSET = 10_000
SERVICE_PORT = 9080
HEALTH_PATH = "/health"


@dataclass(frozen=True)
class Workload:
    service: str
    version: str
    address: str
    service_account: str

    @property
    def name(self) -> str:
        return f"{self.service}-{self.version}"

    @property
    def app_port(self) -> int:
        """Where the app listens, beside its sidecar on the service port."""
        return SERVICE_PORT + APP_PORT_OFFSET

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.service, "version": self.version}


# (service, version, service account), each on its own address 127.<subnet>.10.<n>.
_WORKLOADS = (
    ("productpage", "v1", "bookinfo-productpage"),
    ("details", "v1", "bookinfo-details"),
    ("reviews", "v1", "bookinfo-reviews"),
    ("reviews", "v2", "bookinfo-reviews"),
    ("reviews", "v3", "bookinfo-reviews"),
    ("ratings", "v1", "bookinfo-ratings"),
)


def workloads(subnet: int = 0, address: Callable[[int], str] | None = None) -> list[Workload]:
    """Bookinfo's workloads, each on `address(n)` (default 127.<subnet>.10.<n>)."""
    def loopback(n: int) -> str:
        return f"127.{subnet}.10.{n}"

    at = address or loopback
    return [Workload(service, version, at(n), account)
            for n, (service, version, account) in enumerate(_WORKLOADS, start=1)]


def virtual_ips(subnet: int) -> dict[str, str]:
    """Per service, the address cluster DNS would give it (used under iptables capture)."""
    services = sorted({service for service, _, _ in _WORKLOADS})
    return {service: f"240.240.{subnet}.{n}" for n, service in enumerate(services, start=1)}


def app_argv(python: str, workload: Workload, *, port: int | None = None, host: str | None = None) -> list[str]:
    argv = [python, "-m", "samples.bookinfo", workload.service, "--host", host or workload.address,
            "--port", str(port or workload.app_port), "--podname", workload.name]
    if workload.service == "reviews":
        argv += ["--version", workload.version]
    return argv


def app_probers(workload: Workload, port: int) -> str:
    """ISTIO_KUBE_APP_PROBERS as the injector writes it (the same rewrite) for a Bookinfo pod
    whose container, named after its service, has a readiness probe on the app's /health and
    a TCP liveness probe on its port: the originals behind the agent's /app-health/<container>/*."""
    container = {"name": workload.service,
                 "readinessProbe": {"httpGet": {"path": HEALTH_PATH, "port": port}, "timeoutSeconds": 1},
                 "livenessProbe": {"tcpSocket": {"port": port}, "timeoutSeconds": 1}}
    return json.dumps(rewrite_probes([container], DEFAULT_STATUS_PORT))


def egress_gateway_service(address: str) -> str:
    """The egress gateway's Service: port 80 to the gateway's 8080, as Istio installs it."""
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: istio-egressgateway
  namespace: istio-system
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}, {{number: 443, name: https, protocol: HTTPS}}]
  endpoints:
  - address: {address}
    ports: {{http: 8080, https: 8443}}
    labels: {{istio: egressgateway}}
"""


def platform_config(namespace: str = "default", vips: dict[str, str] | None = None) -> str:
    """One ServiceEntry per Bookinfo service, as Kubernetes Services would be (with their
    cluster IPs when `vips` gives them)."""
    documents = []
    for service in sorted({service for service, _, _ in _WORKLOADS}):
        addresses = f"\n  addresses: [{vips[service]}]" if vips else ""
        documents.append(f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {service}
  namespace: {namespace}
  labels: {{app: {service}, service: {service}}}
spec:
  hosts: [{service}.{namespace}.svc.cluster.local]{addresses}
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {SERVICE_PORT}, name: http, protocol: HTTP}}]
  workloadSelector:
    labels: {{app: {service}}}
""")
    return "---\n".join(documents)
