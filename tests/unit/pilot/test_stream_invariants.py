"""The stream invariants docs/architecture.md states, pinned where test_connection.py and
test_delta.py do not already: one pending push per stream, and a NACKed SotW response not
sent again under a new version when its content is the same."""

from __future__ import annotations

from libs.envoy import CLUSTER_TYPE
from services.pilot.xds.connection import Connection
from services.pilot.xds.server import _PUSH, _Stream
from tests.unit.pilot.test_connection import PROXY, decode, request, snapshot, subscribe_all


def test_a_stream_holds_one_pending_push_however_many_arrive() -> None:
    stream = _Stream(Connection("1", PROXY))
    for _ in range(3):
        stream.request_push()
    assert stream.events.qsize() == 1 and stream.events.get_nowait() is _PUSH
    # Taken by the stream loop (which clears the flag): the next push queues again.
    stream.push_queued = False
    stream.request_push()
    assert stream.events.qsize() == 1


def test_a_nacked_response_is_not_resent_under_a_new_version_with_the_same_content() -> None:
    conn = Connection("1", PROXY)
    subscribe_all(conn, snapshot("1", ["a"], "a"), ("a",))
    (cds, *_rest) = decode(conn.push(snapshot("2", ["a", "b"], "b")))
    conn.handle_request(request(CLUSTER_TYPE, nonce=cds.nonce, version="1", error="bad cluster"),
                        snapshot("2", ["a", "b"], "b"))
    # Version 3 carries exactly what version 2 did: nothing goes out.
    assert conn.push(snapshot("3", ["a", "b"], "b")) == []
    assert conn.watches[CLUSTER_TYPE].version_sent == "2"
