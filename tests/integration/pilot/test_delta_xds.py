"""Delta xDS end to end: a real Envoy gateway whose agent asks for DELTA_GRPC, whatever
MIZZEN_TEST_XDS_API says, takes pilot's config, follows route, endpoint and service
changes (each carrying only what changed), and never rejects what pilot sends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from libs.envoy import CLUSTER_TYPE
from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import answered_by, ask, documents, gateway_yaml, version_subsets, virtual_service
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

REVIEWS = "reviews.default.svc.cluster.local"
RATINGS = "ratings.default.svc.cluster.local"
GATEWAY = "delta-gateway"
DIGEST = re.compile(r"[0-9a-f]{32}")

DESTINATION_RULE = version_subsets("reviews", "v1", "v2")


def reviews_route(subset: str) -> str:
    return virtual_service("reviews", f"- route: [{{destination: {{host: reviews, subset: {subset}}}}}]")


def ratings(server: EchoServer) -> str:
    return documents(service_entry(RATINGS, [Workload(server, {"app": "ratings"})]),
                     virtual_service("ratings", "- route: [{destination: {host: ratings}}]"))


def cluster(subset: str, host: str = REVIEWS) -> str:
    return f"outbound|80|{subset}|{host}"


@dataclass
class Upstreams:
    reviews: dict[str, EchoServer]
    ratings: EchoServer
    ratings_moved: EchoServer


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    servers = Upstreams({v: EchoServer(f"reviews-{v}").start() for v in ("v1", "v2")},
                        EchoServer("ratings").start(), EchoServer("ratings-moved").start())
    yield servers
    for server in [*servers.reviews.values(), servers.ratings, servers.ratings_moved]:
        server.stop()


@pytest.fixture(scope="module")
def delta_gateway(env: ConfigEnv) -> Proxy:
    """An ingress gateway on delta xDS (the conftest's `gateway` follows MIZZEN_TEST_XDS_API)."""
    return env.add_proxy(env.mesh.proxy(env.pilot, name=GATEWAY, node_type="router", namespace="istio-system",
                                        labels={"istio": "ingressgateway"}, xds_api="DELTA_GRPC"))


@pytest.fixture(scope="module")
def port(env: ConfigEnv, delta_gateway: Proxy, upstreams: Upstreams) -> int:
    port = free_port()
    reviews = [Workload(s, {"app": "reviews", "version": v}) for v, s in upstreams.reviews.items()]
    env.apply("delta-base", documents(gateway_yaml("gw", [port]), service_entry(REVIEWS, reviews), DESTINATION_RULE))
    env.apply("delta-reviews-route", reviews_route("v1"))
    wait_until(lambda: ask(port, "reviews.test").status_code == 200, what="the gateway listener")
    return port


def eds_updates(proxy: Proxy, name: str) -> int:
    """How many endpoint updates Envoy applied to cluster `name`."""
    stat = f"cluster.{name}.update_success"
    return proxy.admin.stats(re.escape(stat)).get(stat, 0)


def endpoints(proxy: Proxy, name: str) -> list[str]:
    """The addresses Envoy holds for cluster `name` (its EDS config)."""
    for config in proxy.admin.config_dump()["configs"]:
        if config["@type"].endswith("EndpointsConfigDump"):
            for entry in config.get("dynamic_endpoint_configs", []):
                assignment: dict[str, Any] = entry["endpoint_config"]
                if assignment["cluster_name"] == name:
                    return sorted(f"{e['endpoint']['address']['socket_address']['address']}:"
                                  f"{e['endpoint']['address']['socket_address']['port_value']}"
                                  for group in assignment.get("endpoints", []) for e in group["lb_endpoints"])
    return []


def test_envoy_streams_delta_and_holds_pilots_config(config: ConfigEnv, delta_gateway: Proxy, port: int) -> None:
    (row,) = [p for p in config.pilot.get("/debug/syncz").json()["proxies"] if p["proxy"] == delta_gateway.node_id]
    assert row["xds_api"] == "DELTA_GRPC"
    assert {t: s["acked"] == s["sent"] != "" for t, s in row["types"].items()} == dict.fromkeys(
        ("CDS", "EDS", "LDS", "RDS"), True)
    assert {cluster(""), cluster("v1"), cluster("v2")} <= delta_gateway.admin.cluster_names()
    # Each resource carries its own version, pilot's digest of its content (SotW would show
    # the push version on all of them).
    for entry in delta_gateway.admin.dynamic(CLUSTER_TYPE):
        assert DIGEST.fullmatch(entry["version_info"]), entry
    route = delta_gateway.admin.route_config(f"http.{port}")
    assert route is not None and DIGEST.fullmatch(route["version_info"])
    # Pilot's config_dump (what the delta stream says the proxy holds) is what Envoy holds.
    dump = config.pilot.get("/debug/config_dump", proxyID=f"{GATEWAY}.istio-system").json()
    clusters = next(c for c in dump["configs"] if c["@type"].endswith("ClustersConfigDump"))
    assert {c["cluster"]["name"] for c in clusters["dynamic_active_clusters"]} == delta_gateway.admin.cluster_names()
    assert answered_by(ask(port, "reviews.test")) == "upstream:reviews-v1"


def test_a_virtual_service_change_reaches_traffic_and_nothing_else_is_resent(
        config: ConfigEnv, delta_gateway: Proxy, port: int) -> None:
    before = {name: eds_updates(delta_gateway, name) for name in (cluster("v1"), cluster("v2"))}
    cds_before = delta_gateway.admin.stats(r"cluster_manager\.cds\.update_success")
    try:
        config.apply("delta-reviews-route", reviews_route("v2"))
        wait_until(lambda: answered_by(ask(port, "reviews.test")) == "upstream:reviews-v2", timeout=10,
                   what="the route to move to v2")
    finally:
        config.apply("delta-reviews-route", reviews_route("v1"))
    assert answered_by(ask(port, "reviews.test")) == "upstream:reviews-v1"
    # Routes changed, clusters and endpoints did not: no CDS or EDS update reached Envoy.
    assert delta_gateway.admin.stats(r"cluster_manager\.cds\.update_success") == cds_before
    assert {name: eds_updates(delta_gateway, name) for name in before} == before


def test_an_endpoint_change_reaches_envoy_alone(config: ConfigEnv, delta_gateway: Proxy, port: int,
                                               upstreams: Upstreams) -> None:
    config.apply("delta-ratings", ratings(upstreams.ratings))
    wait_until(lambda: answered_by(ask(port, "ratings.test")) == "upstream:ratings", timeout=10,
               what="the ratings route")
    reviews_updates = eds_updates(delta_gateway, cluster("v1"))
    ratings_updates = eds_updates(delta_gateway, cluster("", RATINGS))

    config.apply("delta-ratings", ratings(upstreams.ratings_moved))
    moved = f"{upstreams.ratings_moved.host}:{upstreams.ratings_moved.port}"
    assert endpoints(delta_gateway, cluster("", RATINGS)) == [moved]
    wait_until(lambda: answered_by(ask(port, "ratings.test")) == "upstream:ratings-moved", timeout=10,
               what="traffic to follow the endpoint")
    # Only the assignment that changed went out.
    assert eds_updates(delta_gateway, cluster("", RATINGS)) == ratings_updates + 1
    assert eds_updates(delta_gateway, cluster("v1")) == reviews_updates


def test_a_removed_services_cluster_leaves_envoy(config: ConfigEnv, delta_gateway: Proxy, port: int,
                                                upstreams: Upstreams) -> None:
    config.apply("delta-ratings", ratings(upstreams.ratings))
    assert cluster("", RATINGS) in delta_gateway.admin.cluster_names()
    assert answered_by(ask(port, "ratings.test")) == "upstream:ratings"

    config.remove("delta-ratings")
    # Removed once the routes that named it are gone (make before break), then ACKed.
    wait_until(lambda: cluster("", RATINGS) not in delta_gateway.admin.cluster_names(), timeout=10,
               what="the ratings cluster to leave Envoy")
    assert ask(port, "ratings.test").status_code == 404
    assert answered_by(ask(port, "reviews.test")) == "upstream:reviews-v1"


def test_a_reconnecting_envoy_gets_only_what_changed_while_pilot_was_away(
        config: ConfigEnv, delta_gateway: Proxy, port: int, upstreams: Upstreams) -> None:
    config.apply("delta-ratings", ratings(upstreams.ratings))
    assert cluster("", RATINGS) in delta_gateway.admin.cluster_names()
    reviews_updates = {name: eds_updates(delta_gateway, name) for name in (cluster("v1"), cluster("v2"))}

    away = config.pilot
    away.process.stop()
    config.remove("delta-ratings", sync=False)
    # Envoy reconnects to the new pilot with initial_resource_versions: what it holds.
    config.pilot = config.mesh.pilot(name="pilot-restarted", xds_port=away.xds_port)
    config.sync()
    (row,) = [p for p in config.pilot.get("/debug/syncz").json()["proxies"] if p["proxy"] == delta_gateway.node_id]
    assert row["xds_api"] == "DELTA_GRPC"
    # The service removed meanwhile goes (once the route to it is replaced and ACKed)...
    wait_until(lambda: cluster("", RATINGS) not in delta_gateway.admin.cluster_names(), timeout=10,
               what="the ratings cluster to leave Envoy")
    assert ask(port, "ratings.test").status_code == 404
    # ...and what Envoy held in the current version was not sent again.
    assert {name: eds_updates(delta_gateway, name) for name in reviews_updates} == reviews_updates
    assert answered_by(ask(port, "reviews.test")) == "upstream:reviews-v1"


def test_envoy_rejected_nothing(config: ConfigEnv, delta_gateway: Proxy) -> None:
    assert config.nacks() == []
    rejected = delta_gateway.admin.stats("update_rejected")
    assert rejected, "Envoy reports update_rejected for CDS, LDS and every EDS cluster"
    assert {name: count for name, count in rejected.items() if count} == {}
