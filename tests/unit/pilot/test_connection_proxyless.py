"""The SotW stream of a client that names its listeners and clusters (proxyless gRPC):
LDS, RDS, CDS, EDS each for exactly the names it asks for, and subscription changes
carried by ACKs answered."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.networking.generator import ProxyConfig
from services.pilot.xds.connection import Connection
from services.pilot.xds.snapshot import Snapshot

CLIENT = Proxy(id="sidecar~10.0.0.9~c.ns~ns.svc.cluster.local", type=NodeType.SIDECAR, ip="10.0.0.9", pod="c",
               namespace="ns", dns_domain="ns.svc.cluster.local", proxyless=True)


def snapshot(version: str, routes_to: dict[str, list[str]], *, port: int = 80, timeout_s: int = 1) -> Snapshot:
    """Listeners `<svc>:80` -> route configs `<svc>` -> clusters; every cluster has endpoints."""
    clusters = sorted({c for targets in routes_to.values() for c in targets} | {"spare-a", "spare-b"})
    resources: dict[str, dict[str, Message]] = {
        CLUSTER_TYPE: {c: cluster_pb2.Cluster(name=c, type=cluster_pb2.Cluster.EDS,
                                              connect_timeout={"seconds": timeout_s}) for c in clusters},
        ENDPOINT_TYPE: {},
        LISTENER_TYPE: {f"{s}:80": listener_pb2.Listener(name=f"{s}:80") for s in routes_to},
        ROUTE_TYPE: {s: route_pb2.RouteConfiguration(name=s, virtual_hosts=[{"name": s, "domains": ["*"],
                                                                             "routes": [{"name": ",".join(t)}]}])
                     for s, t in routes_to.items()},
    }
    for c in clusters:
        assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=c)
        assignment.endpoints.add().lb_endpoints.add().endpoint.address.socket_address.port_value = port
        resources[ENDPOINT_TYPE][c] = assignment
    references = {s: frozenset(t) for s, t in routes_to.items()}
    return Snapshot.from_config(ProxyConfig.from_resources(version, resources, references))


def names_in(raw: list[bytes]) -> list[tuple[str, list[str]]]:
    out = []
    for data in raw:
        response = discovery_pb2.DiscoveryResponse.FromString(data)
        kind = {LISTENER_TYPE: listener_pb2.Listener, ROUTE_TYPE: route_pb2.RouteConfiguration,
                CLUSTER_TYPE: cluster_pb2.Cluster}.get(response.type_url, endpoint_pb2.ClusterLoadAssignment)
        found = []
        for packed in response.resources:
            message = kind()
            packed.Unpack(message)
            found.append(getattr(message, "name", "") or getattr(message, "cluster_name", ""))
        out.append((response.type_url, found))
    return out


class Client:
    """gRPC's side of the stream: the names it wants per type, ACKing each response."""

    def __init__(self) -> None:
        self.conn = Connection("1", CLIENT)
        self.nonce: dict[str, str] = {}
        self.version: dict[str, str] = {}

    def ask(self, type_url: str, names: list[str], snap: Snapshot) -> list[tuple[str, list[str]]]:
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names,
                                                 response_nonce=self.nonce.get(type_url, ""),
                                                 version_info=self.version.get(type_url, ""))
        return self.receive(self.conn.handle_request(request, snap))

    def receive(self, raw: list[bytes]) -> list[tuple[str, list[str]]]:
        for data in raw:
            response = discovery_pb2.DiscoveryResponse.FromString(data)
            self.nonce[response.type_url] = response.nonce
            self.version[response.type_url] = response.version_info
        return names_in(raw)


def opened(snap: Snapshot) -> Client:
    client = Client()
    assert client.ask(LISTENER_TYPE, ["a:80"], snap) == [(LISTENER_TYPE, ["a:80"])]
    assert client.ask(ROUTE_TYPE, ["a"], snap) == [(ROUTE_TYPE, ["a"])]
    assert client.ask(CLUSTER_TYPE, ["a1"], snap) == [(CLUSTER_TYPE, ["a1"])]
    assert client.ask(ENDPOINT_TYPE, ["a1"], snap) == [(ENDPOINT_TYPE, ["a1"])]
    for type_url in (LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE):
        current = client.conn.watches[type_url].names
        assert client.ask(type_url, sorted(current or ()), snap) == []  # the ACKs
    return client


def test_grpc_order_gets_exactly_the_named_resources() -> None:
    client = opened(snapshot("1", {"a": ["a1"], "b": ["b1"]}))
    assert client.conn.in_sync()


def test_names_added_in_an_ack_are_answered() -> None:
    snap = snapshot("1", {"a": ["a1"], "b": ["b1"]})
    client = opened(snap)
    # A second channel target: gRPC adds it to its LDS names, acking the last response.
    assert client.ask(LISTENER_TYPE, ["a:80", "b:80"], snap) == [(LISTENER_TYPE, ["a:80", "b:80"])]
    assert client.ask(CLUSTER_TYPE, ["a1", "b1"], snap) == [(CLUSTER_TYPE, ["a1", "b1"])]


def test_a_push_sends_endpoints_of_subscribed_clusters_only() -> None:
    client = opened(snapshot("1", {"a": ["a1"]}))
    pushed = client.receive(client.conn.push(snapshot("2", {"a": ["a1", "a2"]}, timeout_s=2)))
    # Cluster a1 changed and route a now also names a2: gRPC subscribes a2 itself once it
    # has the route (Envoy's EDS after CDS carries every cluster of the snapshot).
    assert pushed == [(CLUSTER_TYPE, ["a1"]), (ENDPOINT_TYPE, ["a1"]), (ROUTE_TYPE, ["a"])]


def test_a_name_dropped_and_asked_again_is_resent() -> None:
    snap = snapshot("1", {"a": ["a1", "a2"]})
    client = opened(snap)
    assert client.ask(CLUSTER_TYPE, ["a1", "a2"], snap) == [(CLUSTER_TYPE, ["a1", "a2"])]
    client.ask(CLUSTER_TYPE, ["a1"], snap)
    # gRPC forgot a2 when it unsubscribed: the same version must still be answered.
    assert client.ask(CLUSTER_TYPE, ["a1", "a2"], snap) == [(CLUSTER_TYPE, ["a1", "a2"])]


def test_no_names_after_named_ones_is_no_subscription_not_wildcard() -> None:
    snap = snapshot("1", {"a": ["a1"], "b": ["b1"]})
    client = opened(snap)
    assert client.ask(LISTENER_TYPE, [], snap) == [(LISTENER_TYPE, [])]
    assert client.conn.watches[LISTENER_TYPE].names == frozenset()
    assert client.ask(LISTENER_TYPE, ["b:80"], snap) == [(LISTENER_TYPE, ["b:80"])]
