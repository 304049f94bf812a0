"""VirtualService HTTP routing through a real Envoy gateway."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.upstreams import Workload, service_entry
from tests.harness.upstreams import gateway as gateway_yaml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reviews() -> Iterator[dict[str, EchoServer]]:
    servers = {v: EchoServer(f"reviews-{v}").start() for v in ("v1", "v2", "v3")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def routed(config: ConfigEnv, gateway: Proxy, reviews: dict[str, EchoServer]) -> tuple[ConfigEnv, int]:
    port = free_port()
    config.apply("gateway", gateway_yaml(port))
    config.apply("reviews-se", service_entry(
        "reviews.default.svc.cluster.local",
        [Workload(server, {"app": "reviews", "version": v}) for v, server in reviews.items()]))
    config.apply("reviews-dr", DESTINATION_RULE)
    return config, port


DESTINATION_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""


def virtual_service(http: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
{http}"""


def hit(port: int, path: str = "/", **headers: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)


def test_header_match_routes_to_v2(routed: tuple[ConfigEnv, int]) -> None:
    config, port = routed
    config.apply("vs", virtual_service("""\
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""))
    assert hit(port, **{"end-user": "jason"}).headers["x-upstream"] == "reviews-v2"
    assert hit(port).headers["x-upstream"] == "reviews-v1"
    assert hit(port, **{"end-user": "mike"}).headers["x-upstream"] == "reviews-v1"
    assert config.nacks() == []


def test_weighted_split_80_20(routed: tuple[ConfigEnv, int]) -> None:
    config, port = routed
    config.apply("vs", virtual_service("""\
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v3}, weight: 20}
"""))
    with httpx.Client(timeout=10) as client:
        counts = Counter(client.get(f"http://127.0.0.1:{port}/").headers["x-upstream"] for _ in range(1000))
    assert set(counts) == {"reviews-v1", "reviews-v3"}
    # 1,000 draws at p=0.2: the standard deviation is about 12.6, so +-50 is ~4 sigma.
    assert abs(counts["reviews-v3"] - 200) < 50, counts
