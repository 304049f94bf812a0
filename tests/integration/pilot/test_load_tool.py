"""The load tool and the scale benchmark's run, small: simulated sidecars over worker
processes on a real pilot and NATS converge, and each kind of change reaches them as the
targeted push it should be (a VirtualService change as RDS only, an endpoint change as
EDS only, one load assignment), with no NACKs; on state-of-the-world and on delta xDS.
And the two floors under its figures: Python gRPC alone, and the load tool against a server
that replays pilot's responses."""

from __future__ import annotations

from typing import Any

import pytest
import uvloop
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from bench.pilot.replay_floor import floors as replay_floors
from bench.pilot.replay_floor import replay_of
from bench.pilot.scale_mesh import MeshScale
from bench.pilot.scale_run import ScaleSetup, run
from bench.pilot.transport_floor import measure
from libs.envoy import ENDPOINT_TYPE, ROUTE_TYPE, short_type


@pytest.fixture(scope="module", params=["GRPC", "DELTA_GRPC"])
def results(request: pytest.FixtureRequest) -> dict[str, Any]:
    return uvloop.run(run(ScaleSetup(services=30, endpoints=2, namespaces=3, proxies=40, processes=2,
                                     vs_changes=1, endpoint_changes=2, timeout_s=60, api=request.param)))


def test_every_simulated_proxy_syncs_to_one_version(results: dict[str, Any]) -> None:
    sync = results["initial_sync"]
    assert sync["same_version"], sync["versions"]
    assert all(sum(per_version.values()) == 40 for per_version in sync["versions"].values())
    assert results["nacks"] == 0
    assert results["streams"]["errors"] == []


def test_a_virtual_service_change_is_pushed_as_routes_only(results: dict[str, Any]) -> None:
    assert results["virtual_service_changes"]["types_sent"] == ["RDS"]


def test_an_endpoint_change_is_pushed_as_endpoints_only(results: dict[str, Any]) -> None:
    assert results["endpoint_changes"]["types_sent"] == ["EDS"]
    assert results["endpoint_changes"]["most_resources_in_one_response"] == 1


def test_the_transport_floor_carries_every_message_and_ack_on_two_servers() -> None:
    floor = measure(2_000, 300, streams=12, servers=2, clients=2, rounds=3, timeout_s=30)
    assert (floor.streams, floor.servers, floor.rounds) == (12, 2, 3)
    # Each round waits for every stream's ACK (a lost one times the measurement out).
    assert 0 < floor.round_ms_p50 <= floor.round_ms_max < 30_000
    assert floor.server_cpu_ms_per_round > 0


def test_the_replay_floor_times_every_simulated_sidecar_through_each_replayed_change() -> None:
    replayed = replay_floors(3, proxies=12, services=10, endpoints=2, namespaces=2, processes=2, timeout_s=60)
    assert replayed["proxies"] == 12
    for kind in ("virtual_service_change", "endpoint_change"):
        # Each round waits for every proxy's ACK of that round's response.
        assert replayed[kind]["rounds"] == replayed[kind]["last_ack_ms"]["count"] == 3
        assert 0 < replayed[kind]["first_arrival_ms"]["p50"] <= replayed[kind]["last_ack_ms"]["p50"] < 60_000


def test_the_replay_is_pilots_sync_then_one_response_per_change() -> None:
    mesh = MeshScale(services=10, endpoints=2, namespaces=2)
    replay = replay_of(mesh, 2)
    assert sorted(short_type(t) for t in replay.sync) == ["CDS", "EDS", "LDS", "RDS"]
    routes = [discovery_pb2.DiscoveryResponse.FromString(raw) for raw in replay.changes["virtual_service_change"]]
    assert [r.type_url for r in routes] == [ROUTE_TYPE, ROUTE_TYPE]
    assert routes[0].version_info != routes[1].version_info
    configs = [route_pb2.RouteConfiguration.FromString(r.resources[0].value) for r in routes]
    # Each is the scale run's VirtualService change: the route configuration differs.
    assert configs[0].name == configs[1].name and configs[0] != configs[1]
    endpoints = [discovery_pb2.DiscoveryResponse.FromString(raw) for raw in replay.changes["endpoint_change"]]
    assert [e.type_url for e in endpoints] == [ENDPOINT_TYPE, ENDPOINT_TYPE]
    # A workload registered, then the same one gone: one load assignment each, its endpoints 3 then 2.
    assignments = [endpoint_pb2.ClusterLoadAssignment.FromString(e.resources[0].value) for e in endpoints]
    assert [len(e.resources) for e in endpoints] == [1, 1]
    assert assignments[0].cluster_name == assignments[1].cluster_name
    assert [sum(len(group.lb_endpoints) for group in a.endpoints) for a in assignments] == [3, 2]
