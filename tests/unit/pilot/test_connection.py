"""The SotW protocol rules of one ADS stream, without a network."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.networking.generator import ProxyConfig
from services.pilot.xds.connection import Connection
from services.pilot.xds.snapshot import Snapshot

PROXY = Proxy(id="router~1.1.1.1~gw.ns~ns.svc.cluster.local", type=NodeType.ROUTER, ip="1.1.1.1", pod="gw",
              namespace="ns", dns_domain="ns.svc.cluster.local")


def snapshot(version: str, clusters: list[str], route_to: str, *, endpoints_port: int = 80) -> Snapshot:
    resources = {
        CLUSTER_TYPE: {name: cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS) for name in clusters},
        ENDPOINT_TYPE: {name: endpoint_pb2.ClusterLoadAssignment(cluster_name=name) for name in clusters},
        LISTENER_TYPE: {"l": listener_pb2.Listener(name="l")},
        ROUTE_TYPE: {"r": route_pb2.RouteConfiguration(
            name="r", virtual_hosts=[{"name": route_to, "domains": ["*"]}])},
    }
    if endpoints_port != 80:
        for name in clusters:
            endpoint = resources[ENDPOINT_TYPE][name].endpoints.add().lb_endpoints.add().endpoint
            endpoint.address.socket_address.port_value = endpoints_port
    return Snapshot.from_config(ProxyConfig.from_resources(version, resources, {"r": frozenset({route_to})}, ()))


def decode(raw: list[bytes]) -> list[discovery_pb2.DiscoveryResponse]:
    return [discovery_pb2.DiscoveryResponse.FromString(r) for r in raw]


def request(type_url: str, *, nonce: str = "", version: str = "", names: tuple[str, ...] = (),
            error: str | None = None) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(type_url=type_url, response_nonce=nonce, version_info=version,
                                         resource_names=names)
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def subscribe_all(conn: Connection, snap: Snapshot,
                  clusters: tuple[str, ...]) -> dict[str, discovery_pb2.DiscoveryResponse]:
    """Envoy's opening sequence, each response ACKed."""
    last: dict[str, discovery_pb2.DiscoveryResponse] = {}
    for type_url, names in ((CLUSTER_TYPE, ()), (ENDPOINT_TYPE, clusters), (LISTENER_TYPE, ()), (ROUTE_TYPE, ("r",))):
        (response,) = decode(conn.handle_request(request(type_url, names=names), snap))
        last[type_url] = response
        assert conn.handle_request(request(type_url, nonce=response.nonce, version=response.version_info,
                                           names=names), snap) == []
    return last


def test_initial_requests_are_answered_with_the_kv_version() -> None:
    conn = Connection("1", PROXY)
    snap = snapshot("42", ["a", "b"], "a")
    responses = subscribe_all(conn, snap, ("a", "b"))
    assert {t: r.version_info for t, r in responses.items()} == dict.fromkeys(responses, "42")
    assert len(responses[CLUSTER_TYPE].resources) == 2
    assert all(w.version_acked == "42" for w in conn.watches.values())


def test_push_sends_only_changed_types_in_order() -> None:
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    # Only endpoints differ: EDS alone goes out.
    responses = decode(conn.push(snapshot("2", ["a"], "a", endpoints_port=81)))
    assert [r.type_url for r in responses] == [ENDPOINT_TYPE]
    # A new cluster: CDS, then EDS (always after a CDS change), then RDS; LDS is unchanged.
    responses = decode(conn.push(snapshot("3", ["a", "b"], "b")))
    assert [r.type_url for r in responses] == [CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE]
    eds = responses[1]
    assert len(eds.resources) == 2, "endpoints of the new cluster go out before Envoy asks"


def test_nack_is_recorded_and_never_resent() -> None:
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    bad = snapshot("2", ["a", "b"], "b")
    (cds, *_rest) = decode(conn.push(bad))
    assert conn.handle_request(request(CLUSTER_TYPE, nonce=cds.nonce, version="1", error="bad cluster"), bad) == []
    watch = conn.watches[CLUSTER_TYPE]
    assert watch.last_nack is not None and watch.last_nack.message == "bad cluster"
    assert watch.version_acked == "1"
    # The same version is not pushed again...
    assert [r.type_url for r in decode(conn.push(bad))] != [CLUSTER_TYPE]
    # ...but new config is.
    assert decode(conn.push(snapshot("3", ["a", "c"], "c")))[0].type_url == CLUSTER_TYPE


def test_stale_nonce_is_ignored() -> None:
    conn = Connection("1", PROXY)
    first = subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    snap = snapshot("2", ["a", "b"], "b")
    conn.push(snap)
    stale = request(ENDPOINT_TYPE, nonce=first[ENDPOINT_TYPE].nonce, version="1", names=("a", "b", "x"))
    assert conn.handle_request(stale, snap) == []
    assert conn.watches[ENDPOINT_TYPE].names == frozenset({"a"})


def test_ack_with_new_resource_names_is_answered() -> None:
    conn = Connection("1", PROXY)
    snap = snapshot("1", ["a", "b"], "a")
    responses = subscribe_all(conn, snap, ("a",))
    eds = responses[ENDPOINT_TYPE]
    ack = request(ENDPOINT_TYPE, nonce=eds.nonce, version="1", names=("a", "b"))
    (answer,) = decode(conn.handle_request(ack, snap))
    assert answer.nonce != eds.nonce
    assert len(answer.resources) == 2


def test_reconnect_is_always_answered() -> None:
    conn = Connection("2", PROXY)
    snap = snapshot("7", ["a"], "a")
    (response,) = decode(conn.handle_request(request(CLUSTER_TYPE, version="7"), snap))
    assert response.version_info == "7"


def test_clusters_used_by_acked_routes_outlive_them_until_new_routes_are_acked() -> None:
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    move = snapshot("2", ["b"], "b")
    responses = decode(conn.push(move))
    cds = responses[0]
    names = {cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources}
    assert names == {"a", "b"}, "cluster a stays while the ACKed route still names it"
    by_type = {r.type_url: r for r in responses}
    for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE):
        conn.handle_request(request(type_url, nonce=by_type[type_url].nonce, version="2",
                                    names=("a", "b") if type_url == ENDPOINT_TYPE else ()), move)
    # The route moving to b is ACKed: now a goes.
    cleanup = decode(conn.handle_request(request(ROUTE_TYPE, nonce=by_type[ROUTE_TYPE].nonce, version="2",
                                                 names=("r",)), move))
    assert [r.type_url for r in cleanup] == [CLUSTER_TYPE]
    assert {cluster_pb2.Cluster.FromString(r.value).name for r in cleanup[0].resources} == {"b"}


def test_unsubscribing_every_name_is_not_answered() -> None:
    conn = Connection("1", PROXY)
    snap = snapshot("1", ["a"], "a")
    responses = subscribe_all(conn, snap, ("a",))
    eds = responses[ENDPOINT_TYPE]
    assert conn.handle_request(request(ENDPOINT_TYPE, nonce=eds.nonce, version="1", names=()), snap) == []
    assert not conn.watches[ENDPOINT_TYPE].awaiting_ack


def test_clusters_named_by_routes_in_flight_outlive_them() -> None:
    """Routes sent but not yet ACKed may already be in use: Envoy applies responses in
    order, so routes to `b` (push 2) are live until the routes of push 3 arrive.  Push 3's
    CDS, which Envoy applies before those routes, must still hold `b`."""
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    to_b = snapshot("2", ["a", "b"], "b")
    pushed = {r.type_url: r for r in decode(conn.push(to_b))}
    assert ROUTE_TYPE in pushed and conn.watches[ROUTE_TYPE].awaiting_ack
    to_c = snapshot("3", ["c"], "c")
    cds = decode(conn.push(to_c))[0]
    assert cds.type_url == CLUSTER_TYPE
    assert {cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources} == {"a", "b", "c"}, \
        "a: named by the ACKed routes; b: by the routes in flight; c: new"
    # Envoy ACKs everything in order; once push 3's routes are ACKed, a and b go.
    for type_url, response in pushed.items():
        conn.handle_request(request(type_url, nonce=response.nonce, version="2",
                                    names=("a", "b") if type_url == ENDPOINT_TYPE else ()), to_c)
    later = {r.type_url: r for r in decode(conn.push(to_c))}
    assert not later, "push 3 already went out in full"
    watches = conn.watches
    for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE):
        watch = watches[type_url]
        names = ("c",) if type_url == ENDPOINT_TYPE else ("r",) if type_url == ROUTE_TYPE else ()
        cleanup = decode(conn.handle_request(request(type_url, nonce=watch.nonce, version="3", names=names), to_c))
        if type_url == ROUTE_TYPE:
            assert [r.type_url for r in cleanup] == [CLUSTER_TYPE]
            assert {cluster_pb2.Cluster.FromString(r.value).name for r in cleanup[0].resources} == {"c"}


def test_routes_pushed_again_and_again_without_an_ack_keep_every_cluster_they_named() -> None:
    """A proxy that stops ACKing while routes keep changing may be using any route
    configuration sent since its last ACK: every cluster one of them named stays, while
    what the stream holds of them stays a few sets."""
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    targets = [f"c{n}" for n in range(12)]
    for n, target in enumerate(targets):
        assert ROUTE_TYPE in {r.type_url for r in decode(conn.push(snapshot(str(n + 2), [target], target)))}
    cds = decode(conn.push(snapshot("20", ["z"], "z")))[0]
    assert cds.type_url == CLUSTER_TYPE
    assert {cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources} == {"a", *targets, "z"}
    assert len(conn.watches[ROUTE_TYPE].refs_in_flight) <= 8


def test_an_endpoint_push_carries_only_the_load_assignments_that_changed() -> None:
    conn = Connection("1", PROXY)
    clusters = ("a", "b", "c")
    subscribe_all(conn, snapshot("1", list(clusters), "a"), clusters)
    before = snapshot("1", list(clusters), "a")
    changed = dict(before.resources[ENDPOINT_TYPE])
    changed["b"] = snapshot("2", ["b"], "a", endpoints_port=81).resources[ENDPOINT_TYPE]["b"]
    after = Snapshot("2", {**before.resources, ENDPOINT_TYPE: changed}, before.references, ())
    (eds,) = decode(conn.push(after))
    assert eds.type_url == ENDPOINT_TYPE
    assert [endpoint_pb2.ClusterLoadAssignment.FromString(r.value).cluster_name for r in eds.resources] == ["b"]
    # Envoy keeps the rest; pilot knows it still holds all three, the new "b" among them.
    assert conn.watches[ENDPOINT_TYPE].sent == changed
    assert conn.push(after) == []


def test_a_route_push_carries_only_the_route_configurations_that_changed() -> None:
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a", "b"], "a"), ("a", "b"))
    responses = decode(conn.push(snapshot("2", ["a", "b"], "b")))
    assert [r.type_url for r in responses] == [ROUTE_TYPE]
    # Clusters named by the new routes are in flight until Envoy ACKs them.
    assert conn.watches[ROUTE_TYPE].refs_sent == {"r": frozenset({"b"})}


def test_proxyless_clients_get_every_load_assignment_they_watch() -> None:
    conn = Connection("1", Proxy(**{**PROXY.__dict__, "proxyless": True}))
    clusters = ("a", "b")
    subscribe_all(conn, snapshot("1", list(clusters), "a"), clusters)
    (eds,) = decode(conn.push(snapshot("2", list(clusters), "a", endpoints_port=81)))
    assert len(eds.resources) == 2


def test_streams_holding_the_same_part_share_one_diff_of_it() -> None:
    clusters = ("a", "b", "c")
    before = snapshot("1", list(clusters), "a")
    streams = [Connection(str(i), PROXY) for i in range(3)]
    for conn in streams:
        subscribe_all(conn, before, clusters)
    changed = dict(before.resources[ENDPOINT_TYPE])
    changed["c"] = snapshot("2", ["c"], "a", endpoints_port=81).resources[ENDPOINT_TYPE]["c"]
    del changed["a"]
    shared: dict[object, object] = {}
    after = Snapshot("2", {**before.resources, ENDPOINT_TYPE: changed}, before.references, (), shared=shared)
    bodies: list[bytes] = []
    for conn in streams:
        (body,) = conn.push(after)
        (eds,) = decode([body])
        bodies.append(body)
        assert [endpoint_pb2.ClusterLoadAssignment.FromString(r.value).cluster_name for r in eds.resources] == ["c"]
        # "a" is gone from the snapshot: the stream no longer counts it as held.
        assert set(conn.watches[ENDPOINT_TYPE].sent) == {"b", "c"}
    # One diff of the part, one answer to whether the streams' names cover it, one response: for all three.
    assert sorted(str(key[0]) for key in shared if isinstance(key, tuple)) == [
        "names-within", "part-changes", "response"]
    # The first stream's response is its own; from the second on, one is shared.
    assert bodies[1] is bodies[2] and bodies[0] is not bodies[1]


def test_streams_sending_the_same_response_share_it_and_its_nonce() -> None:
    snap = snapshot("1", ["a", "b"], "a")
    lone, first, second = Connection("0", PROXY), Connection("1", PROXY), Connection("2", PROXY)
    # A response one stream sends is its own (not kept for the push's life); the second
    # stream to send it keeps one for all.
    (alone,) = lone.handle_request(request(CLUSTER_TYPE), snap)
    (one,) = first.handle_request(request(CLUSTER_TYPE), snap)
    (two,) = second.handle_request(request(CLUSTER_TYPE), snap)
    assert one is two and alone is not one
    assert decode([alone])[0].resources == decode([one])[0].resources
    nonce = decode([one])[0].nonce
    assert first.watches[CLUSTER_TYPE].nonce == second.watches[CLUSTER_TYPE].nonce == nonce
    # Each stream's ACK settles its own send only.
    assert first.handle_request(request(CLUSTER_TYPE, nonce=nonce, version="1"), snap) == []
    assert not first.watches[CLUSTER_TYPE].awaiting_ack
    assert second.watches[CLUSTER_TYPE].awaiting_ack


def test_the_same_response_twice_on_one_stream_gets_a_nonce_of_its_own() -> None:
    snap = snapshot("1", ["a"], "a")
    conn = Connection("1", PROXY)
    # Another stream sent it first: this stream's first response is the shared one.
    Connection("2", PROXY).handle_request(request(CLUSTER_TYPE), snap)
    (first,) = decode(conn.handle_request(request(CLUSTER_TYPE), snap))
    (other,) = decode(Connection("3", PROXY).handle_request(request(CLUSTER_TYPE), snap))
    assert first.nonce == other.nonce
    # Envoy asks again without a nonce (a re-subscription) before ACKing the first.
    (again,) = decode(conn.handle_request(request(CLUSTER_TYPE), snap))
    assert again.resources == first.resources
    assert again.nonce != first.nonce
    # The first response's ACK is now stale: only the second's settles the type.
    assert conn.handle_request(request(CLUSTER_TYPE, nonce=first.nonce, version="1"), snap) == []
    assert conn.watches[CLUSTER_TYPE].awaiting_ack
    conn.handle_request(request(CLUSTER_TYPE, nonce=again.nonce, version="1"), snap)
    assert not conn.watches[CLUSTER_TYPE].awaiting_ack


def test_streams_share_the_snapshot_dicts_and_name_sets_they_hold() -> None:
    clusters = ("a", "b")
    snap = snapshot("1", list(clusters), "a")
    conn = Connection("1", PROXY)
    subscribe_all(conn, snap, clusters)
    eds = conn.watches[ENDPOINT_TYPE]
    # What Envoy asked for is exactly the snapshot's set, and it holds the snapshot's dict.
    assert eds.names is snap.eds_clusters
    assert eds.sent is snap.resources[ENDPOINT_TYPE]
    assert conn.watches[CLUSTER_TYPE].sent is snap.resources[CLUSTER_TYPE]
    moved = snapshot("2", list(clusters), "a", endpoints_port=81)
    conn.push(moved)
    assert eds.sent is moved.resources[ENDPOINT_TYPE]
    assert eds.sent is not snap.resources[ENDPOINT_TYPE] and snap.resources[ENDPOINT_TYPE]["a"].name == "a"
