"""Proxyless gRPC: a real grpcio client (`xds:///echo:7070`, its own bootstrap naming pilot)
gets listeners, routes, clusters and endpoints from pilot and follows VirtualServices,
calling real grpcio servers registered by a ServiceEntry."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.harness.config_env import ConfigEnv
from tests.harness.grpc_xds import GrpcEchoServer, XdsClient, start_client
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

TARGET = "xds:///echo:7070"
FQDN = "echo.default.svc.cluster.local"
VERSIONS = ("v1", "v2", "v3")
XDS_TYPES = ["CDS", "EDS", "LDS", "RDS"]

DESTINATION_RULE = f"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: {FQDN}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
  - {{name: v3, labels: {{version: v3}}}}
"""


def service_entry(servers: dict[str, GrpcEchoServer]) -> str:
    endpoints = "".join(f"  - {{address: {s.host}, ports: {{grpc: {s.port}}}, labels: {{version: {v}}}}}\n"
                        for v, s in servers.items())
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{FQDN}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 7070, name: grpc, protocol: GRPC}}]
  endpoints:
{endpoints}"""


def virtual_service(http: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
{textwrap.indent(textwrap.dedent(http).strip(), "  ")}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, GrpcEchoServer]]:
    started = {version: GrpcEchoServer(version) for version in VERSIONS}
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def client(env: ConfigEnv, servers: dict[str, GrpcEchoServer]) -> XdsClient:
    env.apply("echo-service", service_entry(servers))
    env.apply("echo-subsets", DESTINATION_RULE)
    return start_client(env.mesh.group, env.pilot, pod="grpc-client", labels={"app": "grpc-client"})


def node_streams(env: ConfigEnv, client: XdsClient) -> list[dict[str, Any]]:
    """/debug/syncz rows of the client's ADS streams: gRPC 1.85 opens one per channel target
    (one XdsClient per target), all with the bootstrap's node id."""
    state = env.pilot.get("/debug/syncz").json()
    return [p for p in state["proxies"] if p["proxy"] == client.node_id]


def assert_acked_without_nack(env: ConfigEnv, client: XdsClient) -> None:
    """Pilot saw the gRPC node ACK every type on every stream at pilot's current version,
    and no NACK."""
    def acked() -> bool:
        version = env.pilot.get("/debug/syncz").json()["version"]
        streams = node_streams(env, client)
        return bool(streams) and all(
            entry["version"] == version and sorted(entry["types"]) == XDS_TYPES and all(
                watch["sent"] and watch["acked"] == watch["sent"] and not watch["awaiting_ack"]
                for watch in entry["types"].values())
            for entry in streams)

    wait_until(acked, timeout=15, what="the gRPC client to ACK pilot's latest config")
    assert env.nacks() == []


def answers(client: XdsClient, n: int, **kwargs: Any) -> Counter[str]:
    return client.call(TARGET, n, **kwargs)


def reaches_all(client: XdsClient, target: str) -> bool:
    return set(client.call(target, 30)) == set(VERSIONS)


def only(client: XdsClient, version: str, n: int = 20, **kwargs: Any) -> bool:
    return answers(client, n, **kwargs) == Counter({version: n})


def test_calls_reach_every_endpoint_by_each_name_of_the_service(config: ConfigEnv, client: XdsClient) -> None:
    for target in (TARGET, "xds:///echo.default:7070", f"xds:///{FQDN}:7070"):
        # Round robin picks among connected endpoints: at first, maybe only one.
        wait_until(partial(reaches_all, client, target), what=f"{target} to reach every endpoint")
    assert answers(client, 30) == Counter(dict.fromkeys(VERSIONS, 10))
    assert_acked_without_nack(config, client)
    # The client named its listeners, and got exactly those, one per target (a wildcard
    # answer would carry every form of the name: eight listeners).
    streams = node_streams(config, client)
    assert sum(entry["types"]["LDS"]["resources"] for entry in streams) == len(client.targets) >= 3
    assert all(entry["types"]["RDS"]["resources"] == 1 for entry in streams)


def test_weighted_split_is_followed(config: ConfigEnv, client: XdsClient) -> None:
    config.apply("echo-routes", virtual_service("""
        - route:
          - {destination: {host: echo, subset: v1}, weight: 80}
          - {destination: {host: echo, subset: v3}, weight: 20}
    """))
    wait_until(lambda: set(answers(client, 50)) == {"v1", "v3"}, what="the split to reach the client")
    counts = answers(client, 500)
    assert set(counts) == {"v1", "v3"}, counts
    assert 0.74 <= counts["v1"] / 500 <= 0.86, counts
    assert_acked_without_nack(config, client)


def test_header_match_routes_to_v2(config: ConfigEnv, client: XdsClient) -> None:
    config.apply("echo-routes", virtual_service("""
        - match: [{headers: {end-user: {exact: jason}}}]
          route: [{destination: {host: echo, subset: v2}}]
        - route: [{destination: {host: echo, subset: v1}}]
    """))
    wait_until(lambda: only(client, "v2", metadata={"end-user": "jason"}), what="jason's calls to reach v2")
    assert only(client, "v2", 50, metadata={"end-user": "jason"})
    assert only(client, "v1", 50)
    assert only(client, "v1", 50, metadata={"end-user": "someone-else"})
    assert_acked_without_nack(config, client)


def test_virtual_service_changes_are_followed_on_the_same_stream(config: ConfigEnv, client: XdsClient) -> None:
    config.apply("echo-routes", virtual_service("- route: [{destination: {host: echo, subset: v1}}]"))
    wait_until(lambda: only(client, "v1"), what="all calls to reach v1")
    connections = {entry["connection"] for entry in node_streams(config, client)}
    config.apply("echo-routes", virtual_service("- route: [{destination: {host: echo, subset: v3}}]"))
    wait_until(lambda: only(client, "v3"), what="all calls to move to v3")
    config.remove("echo-routes")
    wait_until(lambda: set(answers(client, 30)) == set(VERSIONS), what="round robin over every endpoint again")
    assert client.process.alive()
    assert {entry["connection"] for entry in node_streams(config, client)} == connections, "the client reconnected"
    assert_acked_without_nack(config, client)



def test_a_reopened_channel_gets_its_config_at_once(config: ConfigEnv, client: XdsClient) -> None:
    other = "xds:///echo.default.svc:7070"
    assert client.call(other, 3).total() == 3
    client.close(other)
    # Without an answer to its LDS request the new channel would wait 15 s for the
    # resource-does-not-exist timer, and this call would fail.
    assert client.call(other, 3, timeout_s=5).total() == 3
    assert_acked_without_nack(config, client)


def test_policies_grpc_lacks_are_sent_harmlessly_and_faults_apply(config: ConfigEnv, client: XdsClient) -> None:
    config.apply("echo-routes", virtual_service("""
        - match: [{headers: {x-fault: {exact: abort}}}]
          fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
          route: [{destination: {host: echo, subset: v1}}]
        - match: [{headers: {x-to: {exact: nowhere}}}]
          route: [{destination: {host: nowhere.example.com}}]
        - route: [{destination: {host: echo, subset: v2}}]
          timeout: 3s
          retries: {attempts: 2, retryOn: unavailable}
          corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [POST]}
          headers: {request: {set: {x-added: "1"}}}
          mirror: {host: echo, subset: v3}
    """))
    wait_until(lambda: only(client, "v2"), what="all calls to reach v2")
    # gRPC's fault filter turns the HTTP 503 abort into UNAVAILABLE.
    assert answers(client, 10, metadata={"x-fault": "abort"}) == Counter({"error:UNAVAILABLE": 10})
    # Pilot answers 503 itself for a destination it cannot resolve; gRPC fails those calls.
    assert answers(client, 3, metadata={"x-to": "nowhere"}) == Counter({"error:UNAVAILABLE": 3})
    assert_acked_without_nack(config, client)


HASHED = "echo-hash.default.svc.cluster.local"


def test_consistent_hash_keeps_each_user_on_one_endpoint(config: ConfigEnv, client: XdsClient,
                                                          servers: dict[str, GrpcEchoServer]) -> None:
    config.apply("hash-service", service_entry(servers).replace(FQDN, HASHED).replace("name: echo", "name: echo-hash"))
    config.apply("hash-policy", f"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo-hash, namespace: default}}
spec:
  host: {HASHED}
  trafficPolicy:
    loadBalancer: {{consistentHash: {{httpHeaderName: x-user}}}}
    connectionPool: {{http: {{http2MaxRequests: 100}}}}
  subsets:
  - name: least
    labels: {{version: v1}}
    trafficPolicy: {{loadBalancer: {{simple: LEAST_REQUEST}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo-hash, namespace: default}}
spec:
  hosts: [echo-hash]
  http:
  - route: [{{destination: {{host: echo-hash}}}}]
""")
    target = "xds:///echo-hash:7070"
    wait_until(lambda: client.call(target, 3).total() == 3, what="the hashed service to answer")
    seen: set[str] = set()
    for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
        counts = client.call(target, 12, metadata={"x-user": user})
        assert len(counts) == 1 and not next(iter(counts)).startswith("error"), (user, counts)
        seen.update(counts)
    # Round robin would have spread every user over all three.
    assert seen <= set(VERSIONS)
    assert_acked_without_nack(config, client)
