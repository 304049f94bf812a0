"""State-of-the-world requests read off the wire: an ACK's repeated resource names are
left as bytes and decoded only when they change, with the same answers as decoding all."""

from __future__ import annotations

import pytest
from envoy.service.discovery.v3 import discovery_pb2

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.xds.connection import Connection
from services.pilot.xds.requests import ReadRequest, read_request
from tests.unit.pilot.test_connection import PROXY, decode, request, snapshot

CLUSTERS = tuple(f"outbound|80||svc-{i}.ns.svc.cluster.local" for i in range(50))
# A name that carries what the reader looks for where the type URL starts.
TRICKY = "x\x22\x3dtype.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def test_an_ack_is_read_without_its_names_and_they_decode_to_the_request() -> None:
    ack = request(ENDPOINT_TYPE, nonce="1-7", version="3", names=CLUSTERS)
    read = read_request(ack.SerializeToString())
    assert read.names is not None
    assert list(read.message.resource_names) == []
    message = read.message
    assert (message.type_url, message.response_nonce, message.version_info) == (ENDPOINT_TYPE, "1-7", "3")
    assert read.whole() == ack
    assert read.names_stand_alone(read.whole())


def test_a_request_with_a_node_or_without_names_is_read_whole() -> None:
    first = request(CLUSTER_TYPE)
    first.node.id = "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local"
    read = read_request(first.SerializeToString())
    assert read.names is None and read.message == first and read.node.id == first.node.id
    cds_ack = request(CLUSTER_TYPE, nonce="1-1", version="3")
    assert read_request(cds_ack.SerializeToString()).names is None


def test_a_name_that_looks_like_the_type_url_is_not_taken_for_it() -> None:
    # The type URL is looked for from the end: a name before it that quotes one is a name.
    ack = request(ENDPOINT_TYPE, nonce="1-7", version="3", names=(*CLUSTERS, TRICKY))
    read = read_request(ack.SerializeToString())
    assert read.names is not None and read.whole() == ack
    assert read.names_stand_alone(read.whole())


def test_a_nack_quoting_a_type_url_is_read_whole() -> None:
    nack = request(ENDPOINT_TYPE, nonce="1-7", version="3", names=CLUSTERS,
                   error='bad ""type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment')
    read = read_request(nack.SerializeToString())
    assert read.whole() == nack
    # Cut inside the error, the rest does not decode and the request is read whole; had it
    # decoded, what was split off would not be names alone, and never be remembered.
    assert read.names is None or not read.names_stand_alone(read.whole())


def script(names: tuple[str, ...]) -> list[tuple[str, discovery_pb2.DiscoveryRequest | None]]:
    """Envoy's opening, a resubscription, a NACK and a stale ACK; None: the next response's
    nonce and version go in (an ACK of it)."""
    return [("cds", request(CLUSTER_TYPE)), ("ack", None), ("eds", request(ENDPOINT_TYPE, names=names)),
            ("ack", None), ("lds", request(LISTENER_TYPE)), ("ack", None), ("rds", request(ROUTE_TYPE, names=("r",))),
            ("ack", None), ("push", None), ("ack", None), ("resubscribe", None), ("nack", None), ("stale", None)]


def test_reading_off_the_wire_answers_every_request_as_decoding_all_of_it_does() -> None:
    # Each stream its own snapshots: streams sharing one push share responses, nonces too.
    snaps = [snapshot("1", list(CLUSTERS), CLUSTERS[0]), snapshot("1", list(CLUSTERS), CLUSTERS[0])]
    pushes = [snapshot("2", [*CLUSTERS, TRICKY], TRICKY), snapshot("2", [*CLUSTERS, TRICKY], TRICKY)]
    decoded, wire = Connection("1", PROXY, clock=lambda: 0.0), Connection("1", PROXY, clock=lambda: 0.0)
    last: dict[str, discovery_pb2.DiscoveryResponse] = {}
    names = CLUSTERS
    current = snaps

    def both(req: discovery_pb2.DiscoveryRequest) -> list[discovery_pb2.DiscoveryResponse]:
        one = decode(decoded.handle_request(req, current[0]))
        other = decode(wire.receive(read_request(req.SerializeToString()), current[1]))
        assert one == other, req
        for response in one:
            last[response.type_url] = response
        return one

    for step, req in script(names):
        if step == "push":
            current = pushes
            one, other = decode(decoded.push(pushes[0])), decode(wire.push(pushes[1]))
            assert one == other
            for response in one:
                last[response.type_url] = response
            names = (*CLUSTERS, TRICKY)
            continue
        if step == "ack":
            for type_url, response in list(last.items()):
                listed = names if type_url == ENDPOINT_TYPE else ("r",) if type_url == ROUTE_TYPE else ()
                both(request(type_url, nonce=response.nonce, version=response.version_info, names=listed))
            continue
        if step == "resubscribe":
            # The proxy drops a cluster from its EDS subscription.
            names = names[1:]
            eds = last[ENDPOINT_TYPE]
            both(request(ENDPOINT_TYPE, nonce=eds.nonce, version=eds.version_info, names=names))
            continue
        if step == "nack":
            eds = last[ENDPOINT_TYPE]
            both(request(ENDPOINT_TYPE, nonce=eds.nonce, version="1", names=names, error="rejected"))
            continue
        if step == "stale":
            both(request(ENDPOINT_TYPE, nonce="1-1", version="1", names=names))
            continue
        assert req is not None
        both(req)
    for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        a, b = decoded.watches[type_url], wire.watches[type_url]
        assert (a.names, a.version_acked, a.nonce, a.last_nack) == (b.names, b.version_acked, b.nonce, b.last_nack)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[ReadRequest]:
    """Every request whose names a connection decodes (`ReadRequest.whole`), from now on."""
    seen: list[ReadRequest] = []
    whole = ReadRequest.whole

    def counted(self: ReadRequest) -> discovery_pb2.DiscoveryRequest:
        seen.append(self)
        return whole(self)

    monkeypatch.setattr(ReadRequest, "whole", counted)
    return seen


def test_an_ack_repeating_its_names_is_not_decoded_again(decoded: list[ReadRequest]) -> None:
    snap = snapshot("1", list(CLUSTERS), CLUSTERS[0])
    conn = Connection("1", PROXY)
    (response,) = decode(conn.receive(read_request(request(ENDPOINT_TYPE, names=CLUSTERS).SerializeToString()), snap))
    held = conn.watches[ENDPOINT_TYPE].names
    ack = request(ENDPOINT_TYPE, nonce=response.nonce, version=response.version_info, names=CLUSTERS)
    decoded.clear()
    assert conn.receive(read_request(ack.SerializeToString()), snap) == []
    assert decoded == []
    assert conn.watches[ENDPOINT_TYPE].names is held
    assert conn.watches[ENDPOINT_TYPE].version_acked == "1"
    # Other names are decoded.
    fewer = request(ENDPOINT_TYPE, nonce=response.nonce, version=response.version_info, names=CLUSTERS[1:])
    conn.receive(read_request(fewer.SerializeToString()), snap)
    assert len(decoded) == 1 and conn.watches[ENDPOINT_TYPE].names == frozenset(CLUSTERS[1:])


def test_streams_of_one_push_keep_one_copy_of_the_same_names() -> None:
    snap = snapshot("1", list(CLUSTERS), CLUSTERS[0])
    kept = []
    for n in range(3):
        conn = Connection(str(n), PROXY)
        # Each stream's request is its own bytes, as read off its own socket.
        conn.receive(read_request(request(ENDPOINT_TYPE, names=CLUSTERS).SerializeToString()), snap)
        kept.append(conn._last_names[ENDPOINT_TYPE][0])
    assert kept[0] is kept[1] is kept[2]
    other = Connection("x", PROXY)
    other.receive(read_request(request(ENDPOINT_TYPE, names=CLUSTERS[1:]).SerializeToString()), snap)
    assert other._last_names[ENDPOINT_TYPE][0] is not kept[0]
    assert other._last_names[ENDPOINT_TYPE][0] != kept[0]


def test_streams_of_one_push_decode_the_same_names_once(decoded: list[ReadRequest]) -> None:
    snap = snapshot("1", list(CLUSTERS), CLUSTERS[0])
    streams = [Connection(str(n), PROXY) for n in range(3)]
    for conn in streams:
        conn.receive(read_request(request(ENDPOINT_TYPE, names=CLUSTERS[1:]).SerializeToString()), snap)
    assert len(decoded) == 1, "the second and third stream take what the first decoded"
    assert streams[0].watches[ENDPOINT_TYPE].names is streams[2].watches[ENDPOINT_TYPE].names
    assert streams[2].watches[ENDPOINT_TYPE].names == frozenset(CLUSTERS[1:])
    # A wildcard's meaning depends on the stream, so it is never taken from another.
    for conn in streams[:2]:
        conn.receive(read_request(request(LISTENER_TYPE, names=("*",)).SerializeToString()), snap)
        assert conn.watches[LISTENER_TYPE].names is None
    assert len(decoded) == 3
    # The next push decodes them afresh.
    later = snapshot("2", list(CLUSTERS), CLUSTERS[0])
    Connection("y", PROXY).receive(read_request(request(ENDPOINT_TYPE, names=CLUSTERS[1:]).SerializeToString()),
                                   later)
    assert len(decoded) == 4
