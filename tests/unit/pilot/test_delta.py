"""The delta (incremental) xDS rules of one ADS stream, without a network."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.networking.generator import ProxyConfig
from services.pilot.xds.delta import DeltaConnection, DeltaWatch
from services.pilot.xds.snapshot import Snapshot
from services.pilot.xds.stream_state import Observer

PROXY = Proxy(id="router~1.1.1.1~gw.ns~ns.svc.cluster.local", type=NodeType.ROUTER, ip="1.1.1.1", pod="gw",
              namespace="ns", dns_domain="ns.svc.cluster.local")

Response = discovery_pb2.DeltaDiscoveryResponse


def listener(name: str, routes: tuple[str, ...]) -> listener_pb2.Listener:
    """A listener whose HTTP connection managers take `routes` from RDS."""
    built = listener_pb2.Listener(name=name)
    for route in routes:
        manager = hcm.HttpConnectionManager(rds=hcm.Rds(route_config_name=route))
        built.filter_chains.add().filters.add(name="hcm").typed_config.Pack(manager)
    return built


def snapshot(version: str, clusters: list[str], routes: dict[str, str], *,
             listeners: dict[str, tuple[str, ...]] | None = None, endpoints_port: int = 80,
             cluster_timeout_s: int = 0) -> Snapshot:
    """`routes`: route configuration name -> the cluster it routes to; `listeners`: listener
    name -> the routes it names (default: one listener `l` naming every route)."""
    if listeners is None:
        listeners = {"l": tuple(routes)}
    resources = {
        CLUSTER_TYPE: {name: cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS) for name in clusters},
        ENDPOINT_TYPE: {name: endpoint_pb2.ClusterLoadAssignment(cluster_name=name) for name in clusters},
        LISTENER_TYPE: {name: listener(name, named) for name, named in listeners.items()},
        ROUTE_TYPE: {name: route_pb2.RouteConfiguration(name=name, virtual_hosts=[{"name": to, "domains": ["*"]}])
                     for name, to in routes.items()},
    }
    for name in clusters:
        if cluster_timeout_s:
            resources[CLUSTER_TYPE][name].connect_timeout.seconds = cluster_timeout_s
        if endpoints_port != 80:
            endpoint = resources[ENDPOINT_TYPE][name].endpoints.add().lb_endpoints.add().endpoint
            endpoint.address.socket_address.port_value = endpoints_port
    references = {name: frozenset({to}) for name, to in routes.items()}
    return Snapshot.from_config(ProxyConfig.from_resources(version, resources, references, ()))


def decode(raw: list[bytes]) -> list[Response]:
    return [Response.FromString(r) for r in raw]


def names(response: Response) -> list[str]:
    return [r.name for r in response.resources]


def request(type_url: str, *, nonce: str = "", subscribe: tuple[str, ...] = (), unsubscribe: tuple[str, ...] = (),
            initial: dict[str, str] | None = None, error: str | None = None) -> discovery_pb2.DeltaDiscoveryRequest:
    req = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, response_nonce=nonce,
                                              resource_names_subscribe=subscribe,
                                              resource_names_unsubscribe=unsubscribe,
                                              initial_resource_versions=initial or {})
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return req


def ack(conn: DeltaConnection, response: Response, snap: Snapshot, **changes: tuple[str, ...]) -> list[Response]:
    return decode(conn.handle_request(request(response.type_url, nonce=response.nonce, **changes), snap))


def connect(conn: DeltaConnection, snap: Snapshot, clusters: tuple[str, ...],
            routes: tuple[str, ...] = ("r",)) -> dict[str, Response]:
    """Envoy's opening sequence on a fresh stream, each response ACKed."""
    first: dict[str, Response] = {}
    for type_url, subscribe in ((CLUSTER_TYPE, ()), (ENDPOINT_TYPE, clusters), (LISTENER_TYPE, ()),
                                (ROUTE_TYPE, routes)):
        (response,) = decode(conn.handle_request(request(type_url, subscribe=subscribe), snap))
        first[type_url] = response
        assert ack(conn, response, snap) == []
    return first


def test_wildcard_and_named_subscriptions_get_every_resource_with_its_digest_as_version() -> None:
    conn = DeltaConnection("1", PROXY)
    snap = snapshot("42", ["a", "b"], {"r": "a"})
    first = connect(conn, snap, ("a", "b"))
    assert names(first[CLUSTER_TYPE]) == ["a", "b"], "an empty first CDS request is a wildcard"
    assert names(first[ENDPOINT_TYPE]) == ["a", "b"]
    assert names(first[LISTENER_TYPE]) == ["l"]
    assert names(first[ROUTE_TYPE]) == ["r"]
    for type_url, response in first.items():
        assert response.system_version_info == "42" and response.type_url == type_url
        for resource in response.resources:
            assert resource.version == snap.resources[type_url][resource.name].digest.hex()
            assert resource.resource.type_url == type_url
    cluster = cluster_pb2.Cluster()
    first[CLUSTER_TYPE].resources[0].resource.Unpack(cluster)
    assert cluster.name == "a"
    assert all(w.version_acked == "42" and not w.awaiting_ack for w in conn.watches.values())
    assert set(conn.watches[CLUSTER_TYPE].sent) == {"a", "b"}
    assert conn.watches[CLUSTER_TYPE].names is None and conn.watches[ENDPOINT_TYPE].names == {"a", "b"}


def test_named_subscription_gets_only_what_it_names_and_star_is_a_wildcard() -> None:
    conn = DeltaConnection("1", PROXY)
    snap = snapshot("1", ["a", "b"], {"r": "a"})
    (cds,) = decode(conn.handle_request(request(CLUSTER_TYPE, subscribe=("*",)), snap))
    assert names(cds) == ["a", "b"]
    (eds,) = decode(conn.handle_request(request(ENDPOINT_TYPE, subscribe=("b", "missing")), snap))
    assert names(eds) == ["b"]


def test_leaving_the_wildcard_keeps_only_what_is_named() -> None:
    conn = DeltaConnection("1", PROXY)
    snap = snapshot("1", ["a", "b"], {"r": "a"})
    (cds,) = decode(conn.handle_request(request(CLUSTER_TYPE, subscribe=("*", "a")), snap))
    assert names(cds) == ["a", "b"]
    assert decode(conn.handle_request(request(CLUSTER_TYPE, nonce=cds.nonce, unsubscribe=("*",)), snap)) == []
    assert set(conn.watches[CLUSTER_TYPE].sent) == {"a"} and conn.watches[CLUSTER_TYPE].names == {"a"}
    # No longer a wildcard: a new cluster is not sent, and b's disappearance is not news.
    assert conn.push(snapshot("2", ["a", "c"], {"r": "a"})) == []


def test_the_first_request_is_answered_even_with_nothing_to_send() -> None:
    conn = DeltaConnection("1", PROXY)
    (cds,) = decode(conn.handle_request(request(CLUSTER_TYPE), snapshot("1", [], {}, listeners={})))
    assert list(cds.resources) == [] and list(cds.removed_resources) == [] and cds.nonce
    assert conn.watches[CLUSTER_TYPE].awaiting_ack


def test_subscribe_unsubscribe_and_subscribe_again() -> None:
    conn = DeltaConnection("1", PROXY)
    snap = snapshot("1", ["a", "b"], {"r": "a"})
    first = connect(conn, snap, ("a",))
    # Subscribing to b, with the ACK of the last EDS response: only b goes out.
    (more,) = ack(conn, first[ENDPOINT_TYPE], snap, subscribe=("b",))
    assert names(more) == ["b"] and list(more.removed_resources) == []
    assert ack(conn, more, snap) == []
    # Unsubscribing needs no answer, and is never answered with a removal.
    assert decode(conn.handle_request(request(ENDPOINT_TYPE, unsubscribe=("a",)), snap)) == []
    assert set(conn.watches[ENDPOINT_TYPE].sent) == {"b"}
    # Envoy forgets what it unsubscribed: subscribing again sends it again.
    (again,) = decode(conn.handle_request(request(ENDPOINT_TYPE, subscribe=("a",)), snap))
    assert names(again) == ["a"]


def test_a_push_carries_only_changed_resources_in_push_order() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a", "b"], {"r": "a"}), ("a", "b"))
    assert conn.push(snapshot("2", ["a", "b"], {"r": "a"})) == [], "same content, nothing to send"
    # Only endpoints changed: EDS alone, with both assignments (both changed).
    (eds,) = decode(conn.push(snapshot("3", ["a", "b"], {"r": "a"}, endpoints_port=81)))
    assert eds.type_url == ENDPOINT_TYPE and names(eds) == ["a", "b"]
    # Clusters and a route change: CDS, then EDS again for the updated clusters even though
    # their endpoints did not change (a warming cluster needs them), then RDS; LDS is unchanged.
    responses = decode(conn.push(snapshot("4", ["a", "b"], {"r": "b"}, endpoints_port=81, cluster_timeout_s=5)))
    assert [r.type_url for r in responses] == [CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE]
    assert [names(r) for r in responses] == [["a", "b"], ["a", "b"], ["r"]]
    assert all(r.system_version_info == "4" for r in responses)
    assert len({r.nonce for r in responses}) == 3


def test_a_push_after_one_the_stream_holds_sends_only_what_changed_among_what_it_named() -> None:
    conn = DeltaConnection("1", PROXY)
    first = snapshot("1", ["a", "b", "c"], {"r": "a"})
    connect(conn, first, ("a",))
    endpoints = conn.watches[ENDPOINT_TYPE]
    assert isinstance(endpoints, DeltaWatch) and endpoints.held_as is first.resources[ENDPOINT_TYPE]
    # Every assignment changes; the stream named only a.
    moved = snapshot("2", ["a", "b", "c"], {"r": "a"}, endpoints_port=81)
    (eds,) = decode(conn.push(moved))
    assert (eds.type_url, names(eds)) == (ENDPOINT_TYPE, ["a"])
    assert endpoints.held_as is moved.resources[ENDPOINT_TYPE]
    # It names c too, then c's assignment changes again: c goes out with it.
    assert [names(r) for r in ack(conn, eds, moved, subscribe=("c",))] == [["c"]]
    assert endpoints.held_as is moved.resources[ENDPOINT_TYPE]
    (again,) = decode(conn.push(snapshot("3", ["a", "b", "c"], {"r": "a"}, endpoints_port=82)))
    assert names(again) == ["a", "c"]


def test_an_assignment_dropped_and_brought_back_unchanged_is_not_sent_again() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a", "b"], {"r": "b"}), ("a", "b"))
    # b leaves the snapshot but stays in Envoy (the ACKed route names it), and Envoy keeps
    # its subscription; then b comes back as it was: only the route has news.
    assert [r.type_url for r in decode(conn.push(snapshot("2", ["a"], {"r": "a"})))] == [ROUTE_TYPE]
    back = decode(conn.push(snapshot("3", ["a", "b"], {"r": "b"})))
    assert [r.type_url for r in back] == [ROUTE_TYPE]


def test_a_cluster_kept_for_routes_in_use_is_still_kept_by_the_next_push_and_then_removed() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    move = snapshot("2", ["b"], {"r": "b"})
    cds, _, rds = decode(conn.push(move))
    assert list(cds.removed_resources) == [] and conn.watches[CLUSTER_TYPE].held_as is None
    # Another push before the route is ACKed (b's endpoints, which Envoy has not asked
    # for yet): a is still in use, so nothing goes.
    later = snapshot("3", ["b"], {"r": "b"}, endpoints_port=81)
    assert conn.push(later) == []
    assert ack(conn, cds, later) == []
    (cleanup,) = ack(conn, rds, later)
    assert list(cleanup.removed_resources) == ["a"]
    assert conn.watches[CLUSTER_TYPE].held_as is later.resources[CLUSTER_TYPE]


def test_streams_sending_the_same_change_share_one_response_under_one_nonce() -> None:
    one, two, three = (DeltaConnection(str(n), PROXY) for n in (1, 2, 3))
    for conn in (one, two, three):
        connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    moved = snapshot("2", ["a"], {"r": "a"}, endpoints_port=81)
    (first,), (second,), (third,) = (conn.push(moved) for conn in (one, two, three))
    assert second is third, "joined once for every stream after the first"
    assert Response.FromString(first).resources == Response.FromString(second).resources
    assert Response.FromString(second).nonce == two.watches[ENDPOINT_TYPE].nonce == three.watches[ENDPOINT_TYPE].nonce
    # Asked for again on a stream that has it, the answer gets a nonce of its own.
    (again,) = decode(two.handle_request(request(ENDPOINT_TYPE, subscribe=("a",)), moved)) or [None]
    assert again is None or again.nonce != Response.FromString(second).nonce


def test_fresh_streams_share_a_first_response_only_when_they_subscribe_alike() -> None:
    snap = snapshot("1", ["a", "b", "c"], {"r": "a"})
    alike = [DeltaConnection(str(n), PROXY) for n in (1, 2, 3)]
    other = DeltaConnection("4", PROXY)
    bodies = [conn.handle_request(request(ENDPOINT_TYPE, subscribe=("a", "b")), snap)[0] for conn in alike]
    (own,) = other.handle_request(request(ENDPOINT_TYPE, subscribe=("b", "c")), snap)
    assert bodies[1] is bodies[2], "joined once for the streams after the first"
    assert names(Response.FromString(bodies[0])) == names(Response.FromString(bodies[1])) == ["a", "b"]
    assert names(Response.FromString(own)) == ["b", "c"]
    # What each holds is what it was sent, its own dict, not the one the others hold.
    for conn, held in ((alike[0], {"a", "b"}), (alike[2], {"a", "b"}), (other, {"b", "c"})):
        assert set(conn.watches[ENDPOINT_TYPE].held) == set(conn.watches[ENDPOINT_TYPE].sent) == held
    alike[2].handle_request(request(ENDPOINT_TYPE, unsubscribe=("a",)), snap)
    assert set(alike[1].watches[ENDPOINT_TYPE].held) == {"a", "b"}
    assert set(alike[2].watches[ENDPOINT_TYPE].held) == {"b"}


def test_streams_subscribed_to_what_the_snapshot_names_keep_its_set_not_their_own() -> None:
    snap = snapshot("1", ["a", "b"], {"r": "a"})
    one, two = DeltaConnection("1", PROXY), DeltaConnection("2", PROXY)
    for conn in (one, two):
        conn.handle_request(request(CLUSTER_TYPE), snap)
        # Envoy's EDS subscription arrives in two requests here; what it adds up to counts.
        conn.handle_request(request(ENDPOINT_TYPE, subscribe=("a",)), snap)
        conn.handle_request(request(ENDPOINT_TYPE, subscribe=("b",)), snap)
        conn.handle_request(request(ROUTE_TYPE, subscribe=("r",)), snap)
    for conn in (one, two):
        assert conn.watches[ENDPOINT_TYPE].names is snap.eds_clusters
        assert conn.watches[ROUTE_TYPE].names is snap.route_names
    # A subscription the snapshot does not name is the stream's own, and the other's is left alone.
    one.handle_request(request(ENDPOINT_TYPE, unsubscribe=("b",)), snap)
    assert one.watches[ENDPOINT_TYPE].names == {"a"} and two.watches[ENDPOINT_TYPE].names is snap.eds_clusters
    (eds,) = decode(one.push(snapshot("2", ["a", "b"], {"r": "a"}, endpoints_port=81)))
    assert eds.type_url == ENDPOINT_TYPE and names(eds) == ["a"]


def test_new_clusters_get_endpoints_before_envoy_asks_and_again_when_it_does() -> None:
    conn = DeltaConnection("1", PROXY)
    first = connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    grown = snapshot("2", ["a", "c"], {"r": "c"})
    cds, eds, rds = decode(conn.push(grown))
    assert names(cds) == ["c"], "only the new cluster; a is unchanged"
    # c's endpoints follow at once, so c is warm before the route to it arrives.
    assert (eds.type_url, names(eds), rds.type_url) == (ENDPOINT_TYPE, ["c"], ROUTE_TYPE)
    assert "c" not in conn.watches[ENDPOINT_TYPE].sent
    # Envoy subscribes to c (here with a stale EDS nonce): answered again, since pilot cannot
    # know whether Envoy kept what it had not subscribed to yet.
    (again,) = ack(conn, first[ENDPOINT_TYPE], grown, subscribe=("c",))
    assert names(again) == ["c"] and "c" in conn.watches[ENDPOINT_TYPE].sent


def test_a_cluster_nothing_uses_is_removed_at_once() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a", "b"], {"r": "a"}), ("a", "b"))
    (cds,) = decode(conn.push(snapshot("2", ["a"], {"r": "a"})))
    assert names(cds) == [] and list(cds.removed_resources) == ["b"]
    assert set(conn.watches[CLUSTER_TYPE].sent) == {"a"}


def test_clusters_used_by_acked_routes_outlive_them_until_new_routes_are_acked() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    move = snapshot("2", ["b"], {"r": "b"})
    cds, eds, rds = decode(conn.push(move))
    assert names(cds) == ["b"] and list(cds.removed_resources) == [], "a stays while the ACKed route names it"
    assert (eds.type_url, rds.type_url) == (ENDPOINT_TYPE, ROUTE_TYPE)
    assert ack(conn, cds, move) == [] and ack(conn, eds, move) == []
    # The route moving to b is ACKed: now a goes.
    (cleanup,) = ack(conn, rds, move)
    assert cleanup.type_url == CLUSTER_TYPE and list(cleanup.removed_resources) == ["a"] and names(cleanup) == []
    assert set(conn.watches[CLUSTER_TYPE].sent) == {"b"}


def test_unsubscribing_a_route_releases_the_clusters_only_it_used() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    # The listener now names route s (to b), and route r is gone.
    renamed = snapshot("2", ["b"], {"s": "b"}, listeners={"l2": ("s",)})
    cds, eds, lds = decode(conn.push(renamed))
    assert list(cds.removed_resources) == [], "ACKed route r still names a"
    assert list(lds.removed_resources) == ["l"] and names(lds) == ["l2"]
    assert ack(conn, cds, renamed) == [] and ack(conn, eds, renamed) == [] and ack(conn, lds, renamed) == []
    # Envoy subscribes to s and drops r once the old listener is gone; a goes with r.
    rds_first = conn.watches[ROUTE_TYPE].nonce
    responses = decode(conn.handle_request(request(ROUTE_TYPE, nonce=rds_first, subscribe=("s",),
                                                   unsubscribe=("r",)), renamed))
    assert [(r.type_url, names(r)) for r in responses] == [(ROUTE_TYPE, ["s"])]
    (cleanup,) = ack(conn, responses[0], renamed)
    assert list(cleanup.removed_resources) == ["a"]


def test_routes_and_endpoints_are_never_removed_explicitly() -> None:
    conn = DeltaConnection("1", PROXY)
    connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    bare = snapshot("2", [], {}, listeners={})
    # CDS keeps a (the ACKed route names it), LDS removes the listener, EDS and RDS say
    # nothing: Envoy ignores their removal, and drops them with their cluster and listener.
    (lds,) = decode(conn.push(bare))
    assert lds.type_url == LISTENER_TYPE and list(lds.removed_resources) == ["l"]
    assert ack(conn, lds, bare) == []
    # With the listener gone Envoy unsubscribes its route; then a goes, and then its endpoints.
    (cleanup,) = decode(conn.handle_request(request(ROUTE_TYPE, unsubscribe=("r",)), bare))
    assert cleanup.type_url == CLUSTER_TYPE and list(cleanup.removed_resources) == ["a"]
    assert decode(conn.handle_request(request(ENDPOINT_TYPE, unsubscribe=("a",)), bare)) == []
    assert conn.watches[ENDPOINT_TYPE].sent == {} and conn.watches[ROUTE_TYPE].sent == {}


def test_nack_is_recorded_and_the_rejected_resources_are_not_resent() -> None:
    observer = Recorder()
    conn = DeltaConnection("1", PROXY, observer=observer)
    connect(conn, snapshot("1", ["a"], {"r": "a"}), ("a",))
    bad = snapshot("2", ["a", "b"], {"r": "b"})
    cds, eds, rds = decode(conn.push(bad))
    assert ack(conn, cds, bad) == [] and ack(conn, eds, bad) == []
    assert ack(conn, rds, bad, error="bad route") == []
    watch = conn.watches[ROUTE_TYPE]
    assert watch.last_nack is not None and watch.last_nack.message == "bad route" and watch.last_nack.version == "2"
    assert watch.version_acked == "1" and watch.version_sent == "2" and not watch.awaiting_ack
    assert observer.nacks == [(ROUTE_TYPE, "2", "bad route")]
    assert not conn.in_sync()
    # The same content is not pushed again, whatever else changes...
    (eds,) = decode(conn.push(snapshot("3", ["a", "b"], {"r": "b"}, endpoints_port=81)))
    assert eds.type_url == ENDPOINT_TYPE
    # ...but new content is.
    (fixed,) = decode(conn.push(snapshot("4", ["a", "b"], {"r": "a"}, endpoints_port=81)))
    assert fixed.type_url == ROUTE_TYPE and names(fixed) == ["r"]


def test_a_stale_nonce_acks_nothing_but_its_subscription_changes_apply() -> None:
    conn = DeltaConnection("1", PROXY)
    first = connect(conn, snapshot("1", ["a", "b"], {"r": "a"}), ("a",))
    changed = snapshot("2", ["a", "b"], {"r": "a"}, endpoints_port=81)
    (eds,) = decode(conn.push(changed))
    # An ACK of the first EDS response (older than the one just sent) that also subscribes to b.
    (answer,) = ack(conn, first[ENDPOINT_TYPE], changed, subscribe=("b",))
    assert names(answer) == ["b"]
    assert conn.watches[ENDPOINT_TYPE].awaiting_ack and conn.watches[ENDPOINT_TYPE].nonce == answer.nonce
    # A stale NACK is not recorded either.
    assert ack(conn, eds, changed, error="late") == []
    assert conn.watches[ENDPOINT_TYPE].last_nack is None and conn.watches[ENDPOINT_TYPE].awaiting_ack
    assert ack(conn, answer, changed) == []
    assert not conn.watches[ENDPOINT_TYPE].awaiting_ack and conn.watches[ENDPOINT_TYPE].version_acked == "2"


def test_reconnect_sends_only_what_the_proxy_lacks_and_removes_what_is_gone() -> None:
    before = snapshot("1", ["a", "b", "c"], {"r": "a"})
    now = snapshot("2", ["a", "b"], {"r": "a"}, endpoints_port=81)
    conn = DeltaConnection("2", PROXY)

    def held(type_url: str, names: list[str]) -> dict[str, str]:
        return {n: before.resources[type_url][n].digest.hex() for n in names}

    (cds,) = decode(conn.handle_request(request(CLUSTER_TYPE, initial=held(CLUSTER_TYPE, ["a", "b", "c"])), now))
    # a and b are current; c is gone, but stays until the proxy says which listeners and
    # routes it holds (they might name c).
    assert names(cds) == [] and list(cds.removed_resources) == []
    (eds,) = decode(conn.handle_request(request(ENDPOINT_TYPE, subscribe=("a", "b", "c"),
                                                initial=held(ENDPOINT_TYPE, ["a", "b", "c"])), now))
    assert names(eds) == ["a", "b"], "endpoints changed while the proxy was away"
    (lds,) = decode(conn.handle_request(request(LISTENER_TYPE, initial=held(LISTENER_TYPE, ["l"])), now))
    assert names(lds) == [] and list(lds.removed_resources) == [], "the listener is current: an empty answer"
    (rds,) = decode(conn.handle_request(request(ROUTE_TYPE, subscribe=("r",), initial=held(ROUTE_TYPE, ["r"])),
                                        now))
    assert names(rds) == [] and list(rds.removed_resources) == []
    assert set(conn.watches[CLUSTER_TYPE].sent) == {"a", "b"}, "current resources it holds count as sent"
    # The listener and route it holds are current and name a only: once their (empty)
    # answers are ACKed, c goes.
    assert ack(conn, lds, now) == []
    (cleanup,) = ack(conn, rds, now)
    assert cleanup.type_url == CLUSTER_TYPE and names(cleanup) == [] and list(cleanup.removed_resources) == ["c"]


def test_reconnect_with_an_outdated_route_keeps_its_clusters_until_the_new_route_is_acked() -> None:
    before = snapshot("1", ["a", "b"], {"r": "a"})
    now = snapshot("2", ["b"], {"r": "b"})
    conn = DeltaConnection("2", PROXY)

    def held(type_url: str, names: list[str]) -> dict[str, str]:
        return {n: before.resources[type_url][n].digest.hex() for n in names}

    (cds,) = decode(conn.handle_request(request(CLUSTER_TYPE, initial=held(CLUSTER_TYPE, ["a", "b"])), now))
    (lds,) = decode(conn.handle_request(request(LISTENER_TYPE, initial=held(LISTENER_TYPE, ["l"])), now))
    assert list(cds.removed_resources) == [] and list(lds.removed_resources) == [], \
        "until the proxy reports its routes, any of them may name a"
    assert ack(conn, cds, now) == [] and ack(conn, lds, now) == []
    # The route it holds routes to a; it is replaced, and until that is ACKed a stays.
    (rds,) = decode(conn.handle_request(request(ROUTE_TYPE, subscribe=("r",), initial=held(ROUTE_TYPE, ["r"])), now))
    assert names(rds) == ["r"]
    (cleanup,) = ack(conn, rds, now)
    assert cleanup.type_url == CLUSTER_TYPE and list(cleanup.removed_resources) == ["a"]


def test_a_version_pilot_did_not_make_is_resent() -> None:
    conn = DeltaConnection("2", PROXY)
    snap = snapshot("1", ["a"], {"r": "a"})
    (cds,) = decode(conn.handle_request(request(CLUSTER_TYPE, initial={"a": "not-a-digest"}), snap))
    assert names(cds) == ["a"]


def test_sync_is_noted_once_everything_sent_is_acked() -> None:
    observer = Recorder()
    conn = DeltaConnection("1", PROXY, observer=observer)
    snap = snapshot("7", ["a"], {"r": "a"})
    connect(conn, snap, ("a",))
    assert conn.in_sync() and conn.note_sync() and conn.synced_version == "7"
    assert observer.syncs == ["7"] and not conn.note_sync()
    assert conn.api == "DELTA_GRPC"


def test_resource_entries_are_encoded_once_and_shared() -> None:
    snap = snapshot("1", ["a"], {"r": "a"})
    resource = snap.resources[CLUSTER_TYPE]["a"]
    first = resource.delta_entry()
    assert resource.delta_entry()[0] is first[0] and first[1] is resource.field_bytes
    one, two = DeltaConnection("1", PROXY), DeltaConnection("2", PROXY)
    (a,) = decode(one.handle_request(request(CLUSTER_TYPE), snap))
    (b,) = decode(two.handle_request(request(CLUSTER_TYPE), snap))
    assert a.resources == b.resources and a.nonce != b.nonce


class Recorder(Observer):
    def __init__(self) -> None:
        self.syncs: list[str] = []
        self.nacks: list[tuple[str, str, str]] = []

    def nacked(self, proxy: Proxy, type_url: str, version: str, message: str) -> None:
        self.nacks.append((type_url, version, message))

    def synced(self, proxy: Proxy, version: str, connected_at: float, at: float) -> None:
        self.syncs.append(version)
