"""The self-check every generated config passes before it is served (go-control-plane's
consistency rule), over shared and per-proxy parts alike."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.errors import InconsistentConfig
from services.pilot.networking.generator import ProxyConfig, check_consistency
from services.pilot.networking.memo import TranslationMemo

SHARED_CLUSTERS = {n: cluster_pb2.Cluster(name=n, type=cluster_pb2.Cluster.EDS) for n in ("a", "b")}
SHARED_ENDPOINTS = {n: endpoint_pb2.ClusterLoadAssignment(cluster_name=n) for n in ("a", "b")}
SHARED_ROUTES = {"80": route_pb2.RouteConfiguration(name="80")}


def config(*, own_clusters: dict[str, cluster_pb2.Cluster] | None = None,
           endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] | None = None,
           references: tuple[dict[str, frozenset[str]], ...] = ({"80": frozenset({"a", "b"})},),
           route_names: frozenset[str] = frozenset({"80"})) -> ProxyConfig:
    own = own_clusters if own_clusters is not None else {
        "inbound|8080||": cluster_pb2.Cluster(name="inbound|8080||", type=cluster_pb2.Cluster.STATIC)}
    return ProxyConfig("1", {CLUSTER_TYPE: (SHARED_CLUSTERS, own),
                             ENDPOINT_TYPE: (endpoints if endpoints is not None else SHARED_ENDPOINTS,),
                             LISTENER_TYPE: ({},), ROUTE_TYPE: (SHARED_ROUTES,)},
                       references, (), route_names=route_names)


def test_a_consistent_config_passes_for_every_proxy_sharing_its_parts() -> None:
    memo = TranslationMemo()
    for _ in range(3):
        check_consistency(config(references=({"80": frozenset({"a", "b"})},
                                             {"inbound": frozenset({"inbound|8080||"})})), memo)


@pytest.mark.parametrize(("broken", "message"), [
    ({"own_clusters": {"c": cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.EDS)}},
     "EDS cluster c has no load assignment"),
    ({"endpoints": {**SHARED_ENDPOINTS, "z": endpoint_pb2.ClusterLoadAssignment(cluster_name="z")}},
     "load assignment z has no cluster"),
    ({"route_names": frozenset({"80", "9090"})}, "names route configuration 9090"),
    ({"references": ({"80": frozenset({"a", "gone"})},)}, "80 routes to undefined cluster(s) gone"),
])
def test_each_broken_rule_is_caught_even_after_shared_parts_passed(broken: dict[str, object], message: str) -> None:
    memo = TranslationMemo()
    check_consistency(config(), memo)
    with pytest.raises(InconsistentConfig, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_consistency(config(**broken), memo)  # type: ignore[arg-type]
