"""The whole pipe with real parts: YAML file -> galley -> NATS -> pilot -> ADS -> Envoy -> traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.bus import MESH_CONFIG, Bus, BusSettings
from libs.envoy import CLUSTER_TYPE, ROUTE_TYPE
from samples.echo import EchoServer
from tests.harness.http import HTTP
from tests.harness.mesh import Mesh
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: demo-gateway
  namespace: demo
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["*"]
"""

SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: upstream-a
  namespace: demo
spec:
  hosts: [upstream-a.demo]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port_a}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: upstream-b
  namespace: demo
spec:
  hosts: [upstream-b.demo]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port_b}}}}}]
"""

ROUTE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: demo
  namespace: demo
spec:
  hosts: ["*"]
  gateways: [demo-gateway]
  http:
  - match: [{{uri: {{prefix: /}}}}]
    route:
    - destination: {{host: {host}, port: {{number: 80}}}}
"""


@pytest.fixture
def upstreams() -> Iterator[tuple[EchoServer, EchoServer]]:
    with EchoServer("a") as a, EchoServer("b") as b:
        yield a, b


def _kv_revision(nats_url: str) -> int:
    async def read() -> int:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            entries = await (await bus.kv(MESH_CONFIG)).entries()
            return max(e.revision for e in entries.values())
        finally:
            await bus.close()

    return asyncio.run(read())


def _answer(port: int) -> str | None:
    response = HTTP.get(f"http://127.0.0.1:{port}/hello", timeout=2.0)
    return response.headers.get("x-upstream") if response.status_code == 200 else None


def test_yaml_to_traffic(mesh: Mesh, tmp_path: Path, upstreams: tuple[EchoServer, EchoServer]) -> None:
    a, b = upstreams
    port = free_port()
    config = tmp_path / "config"
    (config / "nested").mkdir(parents=True)
    (config / "gateway.yaml").write_text(GATEWAY.format(port=port))
    (config / "nested" / "services.yaml").write_text(SERVICES.format(port_a=a.port, port_b=b.port))
    route = config / "route.yaml"
    route.write_text(ROUTE.format(host="upstream-a.demo"))

    galley = mesh.galley(config)
    pilot = mesh.pilot()
    gateway = mesh.proxy(pilot, name="ingress", node_type="router", namespace="istio-system",
                         labels={"istio": "ingressgateway"})

    # Traffic reaches the upstream the VirtualService names.
    assert wait_until(lambda: _answer(port) == "a", what="traffic to upstream a")
    assert a.hits[-1]["path"] == "/hello"

    # Envoy holds the route and cluster, versioned with the KV revision they came from.
    revision = _kv_revision(mesh.nats.url)
    route_entry = gateway.admin.route_config(f"http.{port}")
    assert route_entry is not None
    assert route_entry["version_info"] == str(revision)
    clusters = {c["cluster"]["name"]: c for c in gateway.admin.dynamic(CLUSTER_TYPE)}
    assert "outbound|80||upstream-a.demo" in clusters
    assert clusters["outbound|80||upstream-a.demo"]["version_info"] == str(revision)

    # Editing the file moves traffic, with nothing restarted.
    route.write_text(ROUTE.format(host="upstream-b.demo"))
    wait_until(lambda: _answer(port) == "b", timeout=10, what="traffic to move to upstream b")
    new_revision = _kv_revision(mesh.nats.url)
    assert new_revision > revision
    wait_until(lambda: gateway.admin.route_config(f"http.{port}")["version_info"] == str(new_revision),
               what="route version to follow the KV revision")

    # Invalid YAML: reported with the file, and the previous config keeps serving.
    route.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: demo\n")
    wait_until(lambda: "route.yaml" in galley.process.log() and "invalid YAML" in galley.process.log(),
               what="galley to report the broken file")
    assert _answer(port) == "b"

    # An invalid resource: reported with resource, field and reason; traffic unaffected.
    route.write_text(ROUTE.format(host="upstream-a.demo").replace(
        "    - destination: {host: upstream-a.demo, port: {number: 80}}\n",
        "    - destination: {host: upstream-a.demo, port: {number: 80}}\n      weight: 40\n"
        "    - destination: {host: upstream-b.demo, port: {number: 80}}\n      weight: 50\n",
    ))
    wait_until(lambda: "VirtualService demo/demo: spec.http[0].route: weights sum to 90, must be 100"
               in galley.process.log(), what="galley to report the invalid resource")
    assert _answer(port) == "b"
    assert gateway.process.alive() and pilot.process.alive() and galley.process.alive()

    # Pilot saw every version ACKed and none NACKed.
    syncz = pilot.get("/debug/syncz").json()
    (state,) = syncz["proxies"]
    assert state["types"]["RDS"]["acked"] == str(new_revision)
    assert all(t["last_nack"] is None for t in state["types"].values())
    assert ROUTE_TYPE
