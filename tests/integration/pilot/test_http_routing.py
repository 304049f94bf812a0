"""VirtualService HTTP routing through a real Envoy gateway: destinations, weights,
redirects, rewrites, direct responses, and destinations pilot cannot resolve."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import answered_by, ask, documents, echoed, gateway_yaml, version_subsets, virtual_service
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

DESTINATION_RULE = version_subsets("reviews", "v1", "v2", "v3")


def ratings_entry(web: EchoServer, admin: EchoServer) -> str:
    """Two ports, each served by its own process on the one workload address."""
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ratings, namespace: default}}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {{number: 9080, name: http, protocol: HTTP}}
  - {{number: 9090, name: http-admin, protocol: HTTP}}
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {web.port}, http-admin: {admin.port}}}
"""


BIG_BODY = "0123456789abcdef" * 640  # 10 KB: above Envoy's 4 KB default for direct responses

VIRTUAL_SERVICES = [
    virtual_service("header", """
        - match: [{headers: {end-user: {exact: jason}}}]
          route: [{destination: {host: reviews, subset: v2}}]
        - route: [{destination: {host: reviews, subset: v1}}]
    """),
    virtual_service("split", """
        - route:
          - {destination: {host: reviews, subset: v1}, weight: 80}
          - {destination: {host: reviews, subset: v3}, weight: 20}
    """),
    virtual_service("dest", """
        - match: [{uri: {prefix: /subset}}]
          route: [{destination: {host: reviews, subset: v2}}]
        - match: [{uri: {prefix: /port}}]
          route: [{destination: {host: ratings, port: {number: 9090}}}]
        - match: [{uri: {prefix: /fqdn}}]
          route: [{destination: {host: ratings.default.svc.cluster.local, port: {number: 9080}}}]
        - route: [{destination: {host: reviews}}]
    """),
    virtual_service("redirect", """
        - match: [{uri: {prefix: /full}}]
          redirect: {uri: /new, authority: elsewhere.test, port: 8443, scheme: https, redirectCode: 302}
        - match: [{uri: {prefix: /plain}}]
          redirect: {uri: /moved}
        - match: [{uri: {prefix: /derive}}]
          redirect: {authority: other.test, derivePort: FROM_REQUEST_PORT, redirectCode: 307}
        - route: [{destination: {host: reviews, subset: v1}}]
    """),
    virtual_service("rewrite", r"""
        - match: [{uri: {prefix: /old}}]
          rewrite: {uri: /new}
          route: [{destination: {host: reviews, subset: v1}}]
        - match: [{uri: {regex: '/v1/.*'}}]
          rewrite: {uriRegexRewrite: {match: '^/v1/(.*)$', rewrite: '/api/\1'}}
          route: [{destination: {host: reviews, subset: v1}}]
        - match: [{uri: {prefix: /auth}}]
          rewrite: {authority: backend.internal}
          route: [{destination: {host: reviews, subset: v1}}]
        - route: [{destination: {host: reviews, subset: v1}}]
    """),
    virtual_service("direct", f"""
        - match: [{{uri: {{exact: /teapot}}}}]
          directResponse: {{status: 418, body: {{string: "short and stout"}}}}
        - match: [{{uri: {{exact: /big}}}}]
          directResponse: {{status: 200, body: {{string: "{BIG_BODY}"}}}}
        - match: [{{uri: {{exact: /empty}}}}]
          directResponse: {{status: 204}}
        - route: [{{destination: {{host: reviews, subset: v1}}}}]
    """),
    virtual_service("unroutable", """
        - match: [{uri: {prefix: /missing-subset}}]
          route: [{destination: {host: reviews, subset: v9}}]
        - match: [{uri: {prefix: /unknown-host}}]
          route: [{destination: {host: nowhere.default.svc.cluster.local}}]
        - match: [{uri: {prefix: /half}}]
          route:
          - {destination: {host: reviews, subset: v1}, weight: 50}
          - {destination: {host: nowhere.default.svc.cluster.local}, weight: 50}
        - route: [{destination: {host: reviews, subset: v1}}]
    """),
]


@dataclass
class Upstreams:
    reviews: dict[str, EchoServer]
    ratings_web: EchoServer
    ratings_admin: EchoServer


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    servers = Upstreams({v: EchoServer(f"reviews-{v}").start() for v in ("v1", "v2", "v3")},
                        EchoServer("ratings-web").start(), EchoServer("ratings-admin").start())
    yield servers
    for server in [*servers.reviews.values(), servers.ratings_web, servers.ratings_admin]:
        server.stop()


@pytest.fixture(scope="module")
def port(env: ConfigEnv, gateway: Proxy, upstreams: Upstreams) -> int:
    port = free_port()
    env.apply("http-routing", documents(
        service_entry("reviews.default.svc.cluster.local",
                      [Workload(s, {"app": "reviews", "version": v}) for v, s in upstreams.reviews.items()]),
        ratings_entry(upstreams.ratings_web, upstreams.ratings_admin),
        DESTINATION_RULE,
        gateway_yaml("gw", [port]),
        *VIRTUAL_SERVICES,
    ))
    wait_until(lambda: ask(port, "header.test").status_code == 200, what="the gateway listener")
    return port


def test_header_match_routes_to_v2(port: int) -> None:
    assert answered_by(ask(port, "header.test", end_user="jason")) == "upstream:reviews-v2"
    assert answered_by(ask(port, "header.test")) == "upstream:reviews-v1"
    assert answered_by(ask(port, "header.test", end_user="mike")) == "upstream:reviews-v1"


def test_weighted_split_80_20(port: int) -> None:
    with httpx.Client(timeout=10) as client:
        counts = Counter(answered_by(ask(port, "split.test", client=client)) for _ in range(500))
    assert set(counts) == {"upstream:reviews-v1", "upstream:reviews-v3"}
    # 500 draws at p=0.2: the standard deviation is about 8.9, so +-40 is ~4.5 sigma.
    assert abs(counts["upstream:reviews-v3"] - 100) < 40, counts


def test_destination_subset(port: int) -> None:
    with httpx.Client(timeout=10) as client:
        assert {answered_by(ask(port, "dest.test", "/subset", client=client)) for _ in range(20)} == \
            {"upstream:reviews-v2"}


def test_destination_host_without_subset_uses_every_endpoint(port: int) -> None:
    with httpx.Client(timeout=10) as client:
        seen = {answered_by(ask(port, "dest.test", "/", client=client)) for _ in range(60)}
    assert seen == {"upstream:reviews-v1", "upstream:reviews-v2", "upstream:reviews-v3"}


def test_destination_port(port: int) -> None:
    assert answered_by(ask(port, "dest.test", "/port")) == "upstream:ratings-admin"
    assert answered_by(ask(port, "dest.test", "/fqdn")) == "upstream:ratings-web"


def test_redirect_with_code_uri_authority_port_and_scheme(port: int, upstreams: Upstreams) -> None:
    before = len(upstreams.reviews["v1"].hits)
    response = ask(port, "redirect.test", "/full/x?q=1")
    assert response.status_code == 302
    assert response.headers["location"] == "https://elsewhere.test:8443/new?q=1"
    response = ask(port, "redirect.test", "/plain")
    assert response.status_code == 301
    assert response.headers["location"] == "http://redirect.test/moved"
    response = ask(port, "redirect.test", "/derive/path")
    assert response.status_code == 307
    assert response.headers["location"] == f"http://other.test:{port}/derive/path"
    assert len(upstreams.reviews["v1"].hits) == before, "a redirect never reaches the upstream"


def test_rewrite_uri_prefix(port: int) -> None:
    assert echoed(ask(port, "rewrite.test", "/old/page?x=1"))["path"] == "/new/page?x=1"


def test_rewrite_uri_regex(port: int) -> None:
    assert echoed(ask(port, "rewrite.test", "/v1/users/7"))["path"] == "/api/users/7"


def test_rewrite_authority(port: int) -> None:
    received = echoed(ask(port, "rewrite.test", "/auth"))
    assert received["headers"]["host"] == "backend.internal"
    assert received["path"] == "/auth"
    assert echoed(ask(port, "rewrite.test", "/other"))["headers"]["host"] == "rewrite.test"


def test_direct_response_with_body(port: int, upstreams: Upstreams) -> None:
    before = len(upstreams.reviews["v1"].hits)
    response = ask(port, "direct.test", "/teapot")
    assert (response.status_code, response.text) == (418, "short and stout")
    response = ask(port, "direct.test", "/big")
    assert (response.status_code, response.text) == (200, BIG_BODY)
    response = ask(port, "direct.test", "/empty")
    assert (response.status_code, response.text) == (204, "")
    assert len(upstreams.reviews["v1"].hits) == before


def test_unresolvable_destination_fails_only_its_route(env: ConfigEnv, port: int) -> None:
    missing_subset = ask(port, "unroutable.test", "/missing-subset")
    assert missing_subset.status_code == 503 and "subset v9" in missing_subset.text
    assert ask(port, "unroutable.test", "/unknown-host").status_code == 503
    with httpx.Client(timeout=10) as client:
        half = Counter(ask(port, "unroutable.test", "/half", client=client).status_code for _ in range(200))
    assert set(half) == {200, 503} and abs(half[503] - 100) < 40, half
    assert answered_by(ask(port, "unroutable.test", "/fine")) == "upstream:reviews-v1"
    assert env.nacks() == []
    log = env.pilot.process.log()
    assert re.search(r"unroutable: spec\.http\[0\]\.route\[0\]\.destination: subset v9 .* not defined", log), \
        "pilot warns about the missing subset"
    assert "host nowhere.default.svc.cluster.local is not a known service" in log
