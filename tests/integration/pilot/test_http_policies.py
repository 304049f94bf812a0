"""Mirrors, CORS and header operations through a real Envoy gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import ask, documents, echoed, gateway_yaml, version_subsets, virtual_service
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

TO_V1 = "route: [{destination: {host: reviews, subset: v1}}]"
ALLOWED = "https://allowed.example"

DESTINATION_RULE = version_subsets("reviews", "v1", "v2")

VIRTUAL_SERVICES = [
    virtual_service("mirror", f"- mirror: {{host: mirror-a}}\n  mirrorPercentage: {{value: 50}}\n  {TO_V1}"),
    virtual_service("mirror-all", f"- mirror: {{host: mirror-a}}\n  {TO_V1}"),
    virtual_service("mirrors", f"""
        - mirrors:
          - destination: {{host: mirror-a}}
          - destination: {{host: mirror-b}}
            percentage: {{value: 100}}
          {TO_V1}
    """),
    virtual_service("cors", f"""
        - corsPolicy:
            allowOrigins: [{{exact: "{ALLOWED}"}}, {{prefix: "https://app."}}]
            allowMethods: [GET, POST]
            allowHeaders: [x-custom, content-type]
            exposeHeaders: [x-exposed, x-upstream]
            maxAge: 1h
            allowCredentials: true
          {TO_V1}
    """),
    virtual_service("cors-plain", f"""
        - corsPolicy:
            allowOrigins: [{{exact: "{ALLOWED}"}}]
            allowMethods: [GET]
          {TO_V1}
    """),
    virtual_service("headers", """
        - headers:
            request: {set: {x-set: route}, add: {x-add: route}, remove: [x-remove]}
            response: {set: {content-type: text/x-set}, add: {x-upstream: added, x-resp-add: route}}
          route:
          - destination: {host: reviews, subset: v1}
            headers:
              request: {set: {x-dest: single}, remove: [x-dest-remove]}
              response: {set: {x-dest-resp: single}}
    """),
    virtual_service("headers-remove", f"""
        - headers:
            response: {{remove: [x-upstream]}}
          {TO_V1}
    """),
    virtual_service("headers-host", f"""
        - headers:
            request: {{set: {{host: rewritten.internal}}}}
          {TO_V1}
    """),
    virtual_service("headers-split", """
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 50
            headers: {request: {set: {x-dest: v1}}, response: {set: {x-dest-resp: v1}}}
          - destination: {host: reviews, subset: v2}
            weight: 50
            headers: {request: {set: {x-dest: v2}}, response: {set: {x-dest-resp: v2}}}
    """),
]


@dataclass
class Setup:
    port: int
    v1: EchoServer
    mirror_a: EchoServer
    mirror_b: EchoServer
    gateway: Proxy

    def settled(self, server: EchoServer, before: int) -> int:
        """Copies `server` received since it had `before` hits, once Envoy has no shadow
        request for it in flight."""
        host = re.escape(f"{server.name}.default.svc.cluster.local")

        def done() -> int | None:
            stats = self.gateway.admin.stats(rf"^cluster\.outbound\|80\|\|{host}\.upstream_rq_")
            prefix = f"cluster.outbound|80||{server.name}.default.svc.cluster.local."
            in_flight = sum(stats.get(prefix + n, 0) for n in ("upstream_rq_active", "upstream_rq_pending_active"))
            return None if in_flight else len(server.hits) - before + 1

        return wait_until(done, what=f"mirrored requests to {server.name} to finish") - 1


@pytest.fixture(scope="module")
def setup(env: ConfigEnv, gateway: Proxy) -> Iterator[Setup]:
    port = free_port()
    with EchoServer("reviews-v1") as v1, EchoServer("reviews-v2") as v2, EchoServer("mirror-a") as mirror_a, \
            EchoServer("mirror-b") as mirror_b:
        env.apply("http-policies", documents(
            service_entry("reviews.default.svc.cluster.local", [
                Workload(v1, {"app": "reviews", "version": "v1"}), Workload(v2, {"app": "reviews", "version": "v2"})]),
            service_entry("mirror-a.default.svc.cluster.local", [Workload(mirror_a, {"app": "mirror-a"})]),
            service_entry("mirror-b.default.svc.cluster.local", [Workload(mirror_b, {"app": "mirror-b"})]),
            DESTINATION_RULE,
            gateway_yaml("gw", [port]),
            *VIRTUAL_SERVICES,
        ))
        assert env.nacks() == []
        wait_until(lambda: ask(port, "mirror-all.test").status_code == 200, what="the gateway listener")
        ready = Setup(port, v1, mirror_a, mirror_b, gateway)
        # The readiness requests were mirrored too: their copies must land before a test
        # counts copies, or one arrives late and is counted as the test's.
        ready.settled(mirror_a, 0)
        yield ready


def test_mirror_copies_every_request_by_default(setup: Setup) -> None:
    before = len(setup.mirror_a.hits)
    with httpx.Client(timeout=10) as client:
        for i in range(20):
            assert ask(setup.port, "mirror-all.test", f"/copy/{i}", client=client).status_code == 200
    assert setup.settled(setup.mirror_a, before) == 20
    copies = setup.mirror_a.hits[before:]
    assert sorted(c["path"] for c in copies) == sorted(f"/copy/{i}" for i in range(20))
    # Envoy marks a shadow request's authority with a `-shadow` suffix.
    assert {c["headers"]["host"] for c in copies} == {"mirror-all.test-shadow"}


def test_mirror_percentage(setup: Setup) -> None:
    before = len(setup.mirror_a.hits)
    with httpx.Client(timeout=10) as client:
        for _ in range(200):
            assert ask(setup.port, "mirror.test", client=client).status_code == 200
    copies = setup.settled(setup.mirror_a, before)
    # 200 draws at p=0.5: the standard deviation is about 7.1, so +-35 is ~5 sigma.
    assert abs(copies - 100) <= 35, copies


def test_several_mirrors(setup: Setup) -> None:
    before_a, before_b, before_v1 = len(setup.mirror_a.hits), len(setup.mirror_b.hits), len(setup.v1.hits)
    with httpx.Client(timeout=10) as client:
        for _ in range(20):
            assert ask(setup.port, "mirrors.test", client=client).status_code == 200
    assert setup.settled(setup.mirror_a, before_a) == 20
    assert setup.settled(setup.mirror_b, before_b) == 20
    assert len(setup.v1.hits) - before_v1 == 20, "the route's own destination gets each request once"
    assert {h["headers"]["host"] for h in setup.mirror_b.hits[before_b:]} == {"mirrors.test-shadow"}


def preflight(setup: Setup, host: str, origin: str) -> httpx.Response:
    return ask(setup.port, host, "/resource", method="OPTIONS", origin=origin,
               access_control_request_method="POST", access_control_request_headers="x-custom")


def test_cors_preflight_is_answered_by_envoy(setup: Setup) -> None:
    before = len(setup.v1.hits)
    for origin in (ALLOWED, "https://app.example"):
        response = preflight(setup, "cors.test", origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-methods"] == "GET,POST"
        assert response.headers["access-control-allow-headers"] == "x-custom,content-type"
        assert response.headers["access-control-max-age"] == "3600"
    assert len(setup.v1.hits) == before, "Envoy answers a preflight itself"


def test_cors_disallowed_origin_gets_no_cors_headers(setup: Setup) -> None:
    before = len(setup.v1.hits)
    response = preflight(setup, "cors.test", "https://evil.example")
    # Not a preflight Envoy accepts: forwarded to the upstream (Istio's default), without CORS headers.
    assert response.headers["x-upstream"] == "reviews-v1"
    assert len(setup.v1.hits) == before + 1
    response = ask(setup.port, "cors.test", origin="https://evil.example")
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]


def test_cors_allow_credentials(setup: Setup) -> None:
    response = ask(setup.port, "cors.test", origin=ALLOWED)
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    plain = ask(setup.port, "cors-plain.test", origin=ALLOWED)
    assert plain.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in plain.headers


def test_cors_expose_headers(setup: Setup) -> None:
    response = ask(setup.port, "cors.test", origin=ALLOWED)
    assert response.headers["access-control-expose-headers"] == "x-exposed,x-upstream"
    assert "access-control-expose-headers" not in ask(setup.port, "cors-plain.test", origin=ALLOWED).headers


def test_request_headers_set_add_remove(setup: Setup) -> None:
    received = echoed(ask(setup.port, "headers.test", x_set="client", x_add="client", x_remove="client",
                          x_dest_remove="client"))["headers"]
    assert received["x-set"] == "route"
    assert received["x-add"] == "client, route"
    assert "x-remove" not in received


def test_response_headers_set_add_remove(setup: Setup) -> None:
    response = ask(setup.port, "headers.test")
    assert response.headers["content-type"] == "text/x-set"
    assert response.headers.get_list("x-upstream") == ["reviews-v1", "added"]
    assert response.headers["x-resp-add"] == "route"
    removed = ask(setup.port, "headers-remove.test")
    assert removed.status_code == 200 and "x-upstream" not in removed.headers


def test_destination_headers_of_a_single_destination(setup: Setup) -> None:
    response = ask(setup.port, "headers.test", x_dest_remove="client")
    received = echoed(response)["headers"]
    assert received["x-dest"] == "single" and "x-dest-remove" not in received
    assert received["x-set"] == "route", "route-level operations still apply"
    assert response.headers["x-dest-resp"] == "single"


def test_destination_headers_of_weighted_destinations(setup: Setup) -> None:
    seen = set()
    with httpx.Client(timeout=10) as client:
        for _ in range(40):
            response = ask(setup.port, "headers-split.test", client=client)
            version = response.headers["x-upstream"].removeprefix("reviews-")
            assert echoed(response)["headers"]["x-dest"] == version
            assert response.headers["x-dest-resp"] == version
            seen.add(version)
    assert seen == {"v1", "v2"}


def test_setting_the_host_header_rewrites_the_authority(setup: Setup) -> None:
    # Envoy refuses header options on Host (":-prefixed or host headers may not be modified");
    # Istio turns them into the route's host rewrite, and so does pilot.
    assert echoed(ask(setup.port, "headers-host.test"))["headers"]["host"] == "rewritten.internal"
