"""The load tool's reading of responses: the cheap walk must learn what decoding learns."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from bench.pilot.load_client import (
    LARGE_RESOURCE,
    MOST_WALKED,
    BadResponse,
    Facts,
    ParseCache,
    TypeState,
    parse_response,
    read_response,
    request_bytes,
)
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE, pack


def response(type_url: str, *resources: object, nonce: str = "7") -> bytes:
    message = discovery_pb2.DiscoveryResponse(version_info="v3", type_url=type_url, nonce=nonce, canary=True)
    message.resources.extend(pack(r) for r in resources)  # type: ignore[arg-type]
    return message.SerializeToString()


def routes(name: str) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[{"name": name, "domains": ["*"]}])


def test_a_few_resources_are_walked_and_learn_what_decoding_learns() -> None:
    raw = response(ROUTE_TYPE, routes("80"), routes("90"))
    read = read_response(raw)
    assert read.message is None
    assert (read.version, read.type_url, read.nonce, read.count) == ("v3", ROUTE_TYPE, "7", 2)
    decoded = parse_response(discovery_pb2.DiscoveryResponse.FromString(raw), ParseCache())
    assert read.facts(ParseCache()) == decoded == [Facts("80"), Facts("90")]


def test_many_resources_are_decoded_whole() -> None:
    clusters = [cluster_pb2.Cluster(name=f"c{i}", type=cluster_pb2.Cluster.EDS) for i in range(MOST_WALKED + 1)]
    read = read_response(response(CLUSTER_TYPE, *clusters))
    assert read.message is not None and read.count == MOST_WALKED + 1
    assert [f.eds for f in read.facts(ParseCache())] == [f"c{i}" for i in range(MOST_WALKED + 1)]


def test_resources_alike_in_length_are_told_apart() -> None:
    cache = ParseCache()
    assert read_response(response(ROUTE_TYPE, routes("81"))).facts(cache) == [Facts("81")]
    assert read_response(response(ROUTE_TYPE, routes("82"), nonce="8")).facts(cache) == [Facts("82")]
    # The same resource under another nonce is parsed once.
    assert read_response(response(ROUTE_TYPE, routes("81"), nonce="9")).facts(cache) == [Facts("81")]
    assert cache.parsed == 2


def test_large_resources_alike_at_both_ends_are_told_apart_by_their_bytes() -> None:
    def large(name: str, middle: str) -> route_pb2.RouteConfiguration:
        hosts = [{"name": f"h{i}", "domains": [f"h{i}.example"]} for i in range(800)]
        hosts[400]["domains"] = [middle]
        return route_pb2.RouteConfiguration(name=name, virtual_hosts=hosts)

    cache = ParseCache(large_bytes=LARGE_RESOURCE * 4)
    first, second = large("80", "aaaa.example"), large("80", "bbbb.example")
    assert first.ByteSize() == second.ByteSize() >= LARGE_RESOURCE
    renamed = large("81", "aaaa.example")
    for config, name in ((first, "80"), (second, "80"), (renamed, "81")):
        assert read_response(response(ROUTE_TYPE, config)).facts(cache) == [Facts(name)]
    assert cache.parsed == 3
    # Seen again under another nonce: found, not parsed.
    assert read_response(response(ROUTE_TYPE, second, nonce="8")).facts(cache) == [Facts("80")]
    assert cache.parsed == 3
    # Past its byte budget the cache starts over, and still answers right.
    for i in range(5):
        assert read_response(response(ROUTE_TYPE, large("80", f"c{i:03d}.example"))).facts(cache) == [Facts("80")]
    assert read_response(response(ROUTE_TYPE, first)).facts(cache) == [Facts("80")]
    assert cache.parsed == 9


def test_what_envoy_would_reject_is_rejected_either_way() -> None:
    stray = read_response(response(ROUTE_TYPE, cluster_pb2.Cluster(name="c")))
    twice = read_response(response(ROUTE_TYPE, routes("80"), routes("80")))
    broken = read_response(response(ROUTE_TYPE, routes("80")).replace(b"80", b"\xff\xff", 1))
    for read in (stray, twice, broken):
        assert read.message is None
        with pytest.raises(BadResponse):
            read.facts(ParseCache())


def test_requests_are_the_bytes_envoy_protobuf_would_write() -> None:
    def expected(state: TypeState, **extra: object) -> bytes:
        return discovery_pb2.DiscoveryRequest(type_url=state.type_url, version_info=state.version,
                                              response_nonce=state.nonce, resource_names=sorted(state.names or ()),
                                              **extra).SerializeToString()

    eds = TypeState(ENDPOINT_TYPE, frozenset({"outbound|80||b", "outbound|80||a"}), version="v1", nonce="n1")
    assert request_bytes(eds) == expected(eds)
    eds.names, eds.version, eds.nonce = frozenset({"outbound|80||c"}), "v2", "n2"
    assert request_bytes(eds) == expected(eds), "a new subscription is encoded anew"
    assert request_bytes(eds, error="bad") == expected(
        eds, error_detail=status_pb2.Status(code=3, message="bad"))
    cds = TypeState(CLUSTER_TYPE, None)
    node = base_pb2.Node(id="sidecar~10.0.0.1~a.ns~ns.svc.cluster.local")
    assert request_bytes(cds, node=node) == expected(cds, node=node)
