"""Echo upstreams and the Istio YAML that names them, for translation tests."""

from __future__ import annotations

from dataclasses import dataclass

from samples.echo import EchoServer


@dataclass(frozen=True)
class Workload:
    """An echo server registered as one endpoint with labels."""

    server: EchoServer
    labels: dict[str, str]


def service_entry(host: str, workloads: list[Workload], *, namespace: str = "default", port: int = 80,
                  protocol: str = "HTTP", name: str | None = None) -> str:
    """A MESH_INTERNAL STATIC ServiceEntry for `host` with one endpoint per workload."""
    endpoints = "\n".join(
        f"  - address: {w.server.host}\n    ports: {{{protocol.lower()}: {w.server.port}}}\n"
        f"    labels: {{{', '.join(f'{k}: {v}' for k, v in w.labels.items())}}}"
        for w in workloads
    )
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name or host.split('.', maxsplit=1)[0]}
  namespace: {namespace}
spec:
  hosts: [{host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: {protocol.lower()}, protocol: {protocol}}}]
  endpoints:
{endpoints}
"""


def gateway(port: int, *, name: str = "gw", namespace: str = "default", hosts: str = '"*"') -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: {namespace}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http-{port}, protocol: HTTP}}
    hosts: [{hosts}]
"""
