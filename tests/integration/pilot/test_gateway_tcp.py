"""Gateway TCP servers through a real Envoy gateway: VirtualService `tcp` routes with
weights and destination subnets, protocols Envoy forwards as TCP, servers without a route,
and several Gateways merged onto one proxy."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator

import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.stream_servers import StreamEchoServer, exchange
from tests.harness.upstreams import Workload, service_entry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, StreamEchoServer]]:
    servers = {name: StreamEchoServer(name).start() for name in ("db-a", "db-b")}
    yield servers
    for server in servers.values():
        server.stop()


def _tcp_service(name: str, server: StreamEchoServer) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 5432, name: tcp, protocol: TCP}}]
  endpoints: [{{address: {server.host}, ports: {{tcp: {server.port}}}}}]
"""


@pytest.fixture
def services(config: ConfigEnv, gateway: Proxy, databases: dict[str, StreamEchoServer]) -> ConfigEnv:
    config.apply("databases", "---\n".join(_tcp_service(n, s) for n, s in databases.items()))
    return config


def gateway_yaml(servers: str, *, name: str = "gw") -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
{servers}"""


def tcp_server(port: int, protocol: str = "TCP") -> str:
    return f"""\
  - port: {{number: {port}, name: {protocol.lower()}-{port}, protocol: {protocol}}}
    hosts: ["*"]
"""


def routes(tcp: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: databases, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  tcp:
{tcp}"""


def reached(port: int) -> str:
    """Which upstream one new connection through the gateway reaches."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        name, _, echoed = exchange(sock, b"ping").partition(b":")
    assert echoed == b"ping"
    return name.decode()


def test_weighted_tcp_routes_split_connections(services: ConfigEnv) -> None:
    port, mongo_port = free_port(), free_port()
    services.apply("gateway", gateway_yaml(tcp_server(port) + tcp_server(mongo_port, "MONGO")))
    services.apply("routes", routes(f"""\
  - match: [{{port: {port}}}]
    route:
    - {{destination: {{host: db-a}}, weight: 75}}
    - {{destination: {{host: db-b}}, weight: 25}}
  - match: [{{port: {mongo_port}}}]
    route: [{{destination: {{host: db-b}}}}]
"""))
    counts = Counter(reached(port) for _ in range(400))
    # 400 draws at p=0.25: the standard deviation is about 8.7, so +-35 is ~4 sigma.
    assert set(counts) == {"db-a", "db-b"}
    assert abs(counts["db-b"] - 100) < 35, counts
    # MONGO is forwarded as plain TCP.
    assert {reached(mongo_port) for _ in range(5)} == {"db-b"}
    assert services.nacks() == []


def test_destination_subnets_pick_the_rule(services: ConfigEnv) -> None:
    port = free_port()
    services.apply("gateway", gateway_yaml(tcp_server(port)))
    # The gateway listens on 127.0.0.1: connections match 127.0.0.0/8, never 10.0.0.0/8.
    services.apply("routes", routes("""\
  - match: [{destinationSubnets: [10.0.0.0/8]}]
    route: [{destination: {host: db-b}}]
  - match: [{destinationSubnets: [127.0.0.0/8]}]
    route: [{destination: {host: db-a}}]
  - route: [{destination: {host: db-b}}]
"""))
    assert {reached(port) for _ in range(10)} == {"db-a"}
    services.apply("routes", routes("""\
  - match: [{destinationSubnets: [10.0.0.0/8]}]
    route: [{destination: {host: db-a}}]
  - route: [{destination: {host: db-b}}]
"""))
    assert {reached(port) for _ in range(10)} == {"db-b"}
    assert services.nacks() == []


def test_a_tcp_server_without_a_route_gets_no_listener(services: ConfigEnv, gateway: Proxy) -> None:
    routed, unrouted = free_port(), free_port()
    services.apply("gateway", gateway_yaml(tcp_server(routed) + tcp_server(unrouted)))
    services.apply("routes", routes(f"""\
  - match: [{{port: {routed}}}]
    route: [{{destination: {{host: db-a}}}}]
"""))
    assert reached(routed) == "db-a"
    listeners = {entry["name"] for entry in gateway.admin.dynamic(
        "type.googleapis.com/envoy.config.listener.v3.Listener")}
    assert f"127.0.0.1_{routed}" in listeners
    assert f"127.0.0.1_{unrouted}" not in listeners
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", unrouted), timeout=10).close()
    assert services.nacks() == []


@pytest.fixture(scope="module")
def web() -> Iterator[EchoServer]:
    server = EchoServer("web").start()
    yield server
    server.stop()


def test_gateways_merge_per_port_and_the_first_wins_a_conflict(services: ConfigEnv, web: EchoServer) -> None:
    http_port, tcp_port = free_port(), free_port()
    services.apply("web", service_entry("web.default.svc.cluster.local", [Workload(web, {"app": "web"})]))
    # Namespace/name order decides: a-web takes http_port first, so b-db's TCP server on it is
    # dropped with a warning while its other port still serves.
    services.apply("gateways", "---\n".join([
        gateway_yaml(f"""\
  - port: {{number: {http_port}, name: http, protocol: HTTP}}
    hosts: ["*"]
""", name="a-web"),
        gateway_yaml(tcp_server(tcp_port) + tcp_server(http_port), name="b-db"),
    ]))
    services.apply("routes", """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [a-web]
  http: [{route: [{destination: {host: web}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: ["*"]
  gateways: [b-db]
  tcp: [{route: [{destination: {host: db-a}}]}]
""")
    assert HTTP.get(f"http://127.0.0.1:{http_port}/", timeout=10).headers["x-upstream"] == "web"
    assert reached(tcp_port) == "db-a"
    assert services.nacks() == []
