"""The benchmark's Istio config: 100 ServiceEntry services over a few shared echo
upstreams, and per measurement one Gateway + VirtualService pair; written straight into
mesh-config (no galley) or as a file for galley's file source."""

from __future__ import annotations

from collections.abc import Sequence

from libs.bus import MESH_CONFIG, Bus, BusSettings, KvBucket
from libs.config import Resource, parse_text
from samples.echo import EchoServer

NAMESPACE = "bench"
GATEWAY_LABELS = {"istio": "ingressgateway"}


def host(index: int) -> str:
    return f"svc-{index:03d}.{NAMESPACE}.svc.cluster.local"


def service_entries(count: int, upstreams: Sequence[EchoServer]) -> str:
    """`count` services, each with two endpoints drawn from the shared upstreams."""
    documents = []
    for i in range(count):
        endpoints = "\n".join(
            f"  - {{address: {u.host}, ports: {{http: {u.port}}}, labels: {{app: svc-{i:03d}}}}}"
            for u in (upstreams[i % len(upstreams)], upstreams[(i + 1) % len(upstreams)]))
        documents.append(f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: svc-{i:03d}, namespace: {NAMESPACE}}}
spec:
  hosts: [{host(i)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
{endpoints}
""")
    return "---\n".join(documents)


def gateway_and_route(change: int, port: int, service: int) -> str:
    """Measurement `change`: the gateway listens on `port`, and its one route goes to
    `service`, stamping responses with `x-change`, so traffic shows which change it runs."""
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: bench, namespace: {NAMESPACE}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http-{port}, protocol: HTTP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bench, namespace: {NAMESPACE}}}
spec:
  hosts: ["*"]
  gateways: [bench]
  http:
  - route: [{{destination: {{host: {host(service)}}}}}]
    headers: {{response: {{set: {{x-change: "{change}"}}}}}}
"""


def resources(text: str) -> list[Resource]:
    """Parsed and validated as galley would; a benchmark with invalid config is a bug."""
    parsed = parse_text(text, "bench")
    if not parsed.ok or parsed.unsupported:
        raise ValueError("; ".join(parsed.errors()) or f"unsupported: {parsed.unsupported}")
    return [resource for _, resource in parsed.resources]


class ConfigWriter:
    """Writes resources to mesh-config directly, as galley would (same key, same JSON)."""

    def __init__(self, bus: Bus, bucket: KvBucket) -> None:
        self._bus = bus
        self._bucket = bucket

    @classmethod
    async def connect(cls, nats_url: str) -> ConfigWriter:
        bus = await Bus.connect(BusSettings(url=nats_url), name="bench")
        return cls(bus, await bus.kv(MESH_CONFIG))

    async def put(self, text: str) -> int:
        revision = 0
        for resource in resources(text):
            revision = await self._bucket.put(resource.key, resource.to_json())
        return revision

    async def close(self) -> None:
        await self._bus.close()
