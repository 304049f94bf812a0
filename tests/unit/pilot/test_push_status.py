"""Push history, sync detection on a stream, and the convergence metric, without a network."""

from __future__ import annotations

import time

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from prometheus_client import CollectorRegistry

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.metrics import PilotMetrics
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.networking.generator import ProxyConfig
from services.pilot.push_status import PushHistory, PushRecord, convergence_s, wall
from services.pilot.xds.connection import Connection, Observer
from services.pilot.xds.snapshot import Snapshot

PROXY = Proxy(id="router~1.1.1.1~gw.ns~ns.svc.cluster.local", type=NodeType.ROUTER, ip="1.1.1.1", pod="gw",
              namespace="ns", dns_domain="ns.svc.cluster.local")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder(Observer):
    def __init__(self) -> None:
        self.syncs: list[tuple[str, float, float]] = []

    def synced(self, proxy: Proxy, version: str, connected_at: float, at: float) -> None:
        self.syncs.append((version, connected_at, at))


def snapshot(version: str, route_to: str) -> Snapshot:
    resources = {
        CLUSTER_TYPE: {"a": cluster_pb2.Cluster(name="a", type=cluster_pb2.Cluster.EDS)},
        ENDPOINT_TYPE: {"a": endpoint_pb2.ClusterLoadAssignment(cluster_name="a")},
        LISTENER_TYPE: {"l": listener_pb2.Listener(name="l")},
        ROUTE_TYPE: {"r": route_pb2.RouteConfiguration(name="r", virtual_hosts=[{"name": route_to,
                                                                                  "domains": ["*"]}])},
    }
    return Snapshot.from_config(ProxyConfig.from_resources(version, resources, {"r": frozenset({"a"})}, ()))


def request(type_url: str, *, nonce: str = "", version: str = "", names: tuple[str, ...] = (),
            error: str | None = None) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(type_url=type_url, response_nonce=nonce, version_info=version,
                                         resource_names=names)
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def answer(conn: Connection, raw: bytes, snap: Snapshot, *, error: str | None = None) -> None:
    response = discovery_pb2.DiscoveryResponse.FromString(raw)
    names = ("a",) if response.type_url == ENDPOINT_TYPE else ("r",) if response.type_url == ROUTE_TYPE else ()
    conn.handle_request(request(response.type_url, nonce=response.nonce, names=names, error=error,
                                version=response.version_info if error is None else ""), snap)


def connected(clock: Clock, recorder: Recorder) -> tuple[Connection, Snapshot]:
    """Envoy's opening sequence at version 1, every response ACKed."""
    conn = Connection("1", PROXY, observer=recorder, clock=clock)
    snap = snapshot("1", "a")
    for type_url, names in ((CLUSTER_TYPE, ()), (ENDPOINT_TYPE, ("a",)), (LISTENER_TYPE, ()), (ROUTE_TYPE, ("r",))):
        for raw in conn.handle_request(request(type_url, names=names), snap):
            assert not conn.note_sync(), "in sync while a response awaits its ACK"
            answer(conn, raw, snap)
        conn.note_sync()
    return conn, snap


def test_history_merges_pending_changes_and_finds_the_first_push_of_a_version() -> None:
    clock = Clock()
    history = PushHistory(keep=3, clock=clock)
    history.changed()
    clock.now = 101.0
    history.changed()
    assert history.take_pending() == (100.0, 2)
    assert history.take_pending() == (None, 0)
    for i, version in enumerate(("5", "6", "6", "7")):
        history.add(PushRecord(version, "config", 1, float(i), float(i), 0.001, 1))
    assert [r.version for r in history.recent(10)] == ["7", "6", "6"]
    assert history.find("6") is not None and history.find("6").started_at == 1.0  # type: ignore[union-attr]
    assert history.find("5") is None, "only the last `keep` pushes are kept"


def test_convergence_needs_a_change_and_a_proxy_connected_before_the_push() -> None:
    record = PushRecord("9", "config", 1, changed_at=10.0, started_at=10.1, duration_s=0.001, proxies=1)
    assert convergence_s(record, connected_at=5.0, synced_at=10.25) == 0.25
    assert convergence_s(record, connected_at=10.2, synced_at=10.25) is None
    assert convergence_s(PushRecord("0", "initial", 0, None, 1.0, 0.0, 0), 0.0, 2.0) is None
    assert convergence_s(None, 0.0, 1.0) is None


def test_a_stream_syncs_when_every_type_is_acked() -> None:
    clock, recorder = Clock(), Recorder()
    conn, _ = connected(clock, recorder)
    assert conn.synced_version == "1" and recorder.syncs == [("1", 100.0, 100.0)]

    # Version 2 changes the route: in sync only once RDS is ACKed, at the ACK's time.
    snap = snapshot("2", "b")
    (raw,) = conn.push(snap)
    assert not conn.note_sync()
    clock.now = 100.5
    answer(conn, raw, snap)
    assert conn.note_sync() and not conn.note_sync()
    assert (conn.synced_version, conn.synced_at) == ("2", 100.5)

    # Version 3 changes nothing this proxy sees: nothing is sent, and it is in sync at once.
    clock.now = 101.0
    assert conn.push(snapshot("3", "b")) == []
    assert conn.note_sync()
    assert recorder.syncs[-1] == ("3", 100.0, 101.0)

    # Version 4 is NACKed: never in sync with it, nor with a later version that carries the
    # same rejected content (pilot does not resend it; Envoy still runs version 3's routes).
    snap = snapshot("4", "c")
    (raw,) = conn.push(snap)
    answer(conn, raw, snap, error="rejected")
    assert not conn.note_sync()
    assert conn.push(snapshot("5", "c")) == []
    assert not conn.note_sync()
    assert conn.synced_version == "3"


def test_convergence_metric_and_connection_gauge() -> None:
    registry = CollectorRegistry()
    history = PushHistory()
    metrics = PilotMetrics(registry, history)
    history.add(PushRecord("9", "config", 1, changed_at=10.0, started_at=10.1, duration_s=0.001, proxies=1))
    metrics.synced(PROXY, "9", connected_at=5.0, at=10.25)
    metrics.synced(PROXY, "9", connected_at=10.2, at=10.3)  # connected after the push: not a convergence
    metrics.synced(PROXY, "unknown", connected_at=5.0, at=10.3)
    assert registry.get_sample_value("pilot_proxy_convergence_time_count") == 1
    assert registry.get_sample_value("pilot_proxy_convergence_time_sum") == 0.25
    streams = [1, 2]
    metrics.count_connections(lambda: len(streams))
    assert registry.get_sample_value("pilot_xds") == 2
    streams.pop()
    assert registry.get_sample_value("pilot_xds") == 1


def test_sends_and_acks_count_by_type_and_trigger() -> None:
    registry = CollectorRegistry()
    metrics = PilotMetrics(registry)
    eds, rds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", \
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    for type_url, trigger in ((eds, "config"), (eds, "config"), (eds, "request"), (rds, "config")):
        metrics.sent(PROXY, type_url, "1", trigger)
    metrics.acked(PROXY, eds, "1", 0.002)
    metrics.acked(PROXY, eds, "1", 0.2)
    metrics.acked(PROXY, rds, "1", 0.02)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("pilot_xds_pushes_total", type="EDS", trigger="config") == 2
    assert value("pilot_xds_pushes_total", type="EDS", trigger="request") == 1
    assert value("pilot_xds_pushes_total", type="RDS", trigger="config") == 1
    assert value("pilot_xds_acks_total", type="EDS") == 2
    assert value("pilot_xds_acks_total", type="RDS") == 1
    assert value("pilot_xds_ack_latency_seconds_count", type="EDS") == 2
    assert value("pilot_xds_ack_latency_seconds_bucket", type="EDS", le="0.005") == 1
    assert value("pilot_xds_ack_latency_seconds_sum", type="RDS") == 0.02


def test_a_reading_shows_as_the_same_wall_time_however_the_system_clock_moves_since(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """/debug/push_status must not change between two looks with no push in between."""
    reading = time.monotonic()
    shown = wall(reading)
    assert abs(shown - time.time()) < 1.0
    monkeypatch.setattr(time, "time", lambda: shown + 0.5)  # the system clock slewed or stepped
    assert wall(reading) == shown
