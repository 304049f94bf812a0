"""Sidecars in the local mesh's proxy mode: apps use their sidecar as HTTP proxy, and a
sidecar listening on the workload's address hands inbound traffic to the app."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import via_http_proxy
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port

pytestmark = pytest.mark.integration

CLIENT_IP = "127.0.30.1"
REVIEWS_V1_IP = "127.0.30.2"
REVIEWS_V2_IP = "127.0.30.3"
APP_PORT = 19080


def _workload_entry(name: str, ip: str, version: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: default, labels: {{security.istio.io/tlsMode: istio}}}}
spec:
  address: {ip}
  labels: {{app: reviews, version: {version}}}
  serviceAccount: bookinfo-reviews
"""


SERVICES = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
{_workload_entry("reviews-v1", REVIEWS_V1_IP, "v1")}---
{_workload_entry("reviews-v2", REVIEWS_V2_IP, "v2")}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"""


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, EchoServer]]:
    servers = {"v1": EchoServer("reviews-v1", REVIEWS_V1_IP, APP_PORT).start(),
               "v2": EchoServer("reviews-v2", REVIEWS_V2_IP, APP_PORT).start()}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def sidecars(env: ConfigEnv, apps: dict[str, EchoServer]) -> dict[str, Proxy]:
    env.apply("services", SERVICES)
    proxies = {
        "client": env.mesh.proxy(env.pilot, name="productpage", bind_address=CLIENT_IP, interception="NONE",
                                 labels={"app": "productpage"}, wait_live=False),
        "v1": env.mesh.proxy(env.pilot, name="reviews-v1", bind_address=REVIEWS_V1_IP, interception="NONE",
                             labels={"app": "reviews", "version": "v1"}, app_ports={9080: APP_PORT}, wait_live=False),
        "v2": env.mesh.proxy(env.pilot, name="reviews-v2", bind_address=REVIEWS_V2_IP, interception="NONE",
                             labels={"app": "reviews", "version": "v2"}, app_ports={9080: APP_PORT}, wait_live=False),
    }
    env.add_proxies(*proxies.values())
    return proxies


def via_sidecar(url: str, **headers: str) -> httpx.Response:
    return via_http_proxy(f"{CLIENT_IP}:15001").get(url, headers=headers)


def test_every_host_form_reaches_the_service_through_both_sidecars(
        config: ConfigEnv, sidecars: dict[str, Proxy]) -> None:
    for host in ("reviews", "reviews.default", "reviews.default.svc", "reviews.default.svc.cluster.local"):
        response = via_sidecar(f"http://{host}:9080/reviews/0")
        assert response.status_code == 200, (host, response.text)
        assert response.headers["x-upstream"] in ("reviews-v1", "reviews-v2")
        # The inbound sidecar handled it: the app sees Envoy's request id and the original path.
        echoed = response.json()
        assert echoed["path"] == "/reviews/0" and "x-request-id" in echoed["headers"]
    assert config.nacks() == []


def test_virtual_service_for_the_mesh_routes_by_header(config: ConfigEnv, sidecars: dict[str, Proxy]) -> None:
    config.apply("vs", """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
""")
    assert {via_sidecar("http://reviews:9080/").headers["x-upstream"] for _ in range(10)} == {"reviews-v1"}
    assert via_sidecar("http://reviews:9080/", **{"end-user": "jason"}).headers["x-upstream"] == "reviews-v2"


def test_unknown_hosts_follow_the_outbound_traffic_policy(config: ConfigEnv, sidecars: dict[str, Proxy]) -> None:
    outside = EchoServer("outside", "127.0.30.9", free_port("127.0.30.9")).start()
    try:
        config.apply("sidecar", """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
""")
        blocked = via_sidecar(f"http://127.0.30.9:{outside.port}/")
        assert blocked.status_code == 502
        assert outside.hits == []
        assert via_sidecar("http://reviews:9080/").status_code == 200
    finally:
        outside.stop()


def test_sidecar_egress_hosts_limit_what_a_proxy_receives(config: ConfigEnv, sidecars: dict[str, Proxy]) -> None:
    config.apply("sidecar", """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress:
  - hosts: ["istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
""")
    clusters = sidecars["client"].admin.cluster_names()
    assert not any("reviews" in name for name in clusters), clusters
    assert via_sidecar("http://reviews:9080/").status_code == 502
    # The reviews sidecars are not selected by it and keep their view.
    assert any("reviews" in name for name in sidecars["v1"].admin.cluster_names())
