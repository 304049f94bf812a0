"""Istio's standard metrics from real Envoys' access log streams: exact counts on both
reporters, every label, a fault-injected abort, gRPC status, TCP bytes and connections, a
telemetry restart that loses only what was in flight, and the access log lines."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from samples.echo import EchoServer
from tests.harness.citadel import identity_sidecar, start_citadel
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP, via_http_proxy
from tests.harness.kv import config_revision
from tests.harness.mesh import Mesh, Proxy, TelemetryService
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.stream_servers import StreamEchoServer
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

CLIENT_IP, SERVER_IP, OUTSIDE_IP = "127.0.42.1", "127.0.42.2", "127.0.42.9"
APP_PORT, GRPC_APP_PORT = 19080, 17070


def config(telemetry: TelemetryService, errors_log: Path) -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    enableEnvoyAccessLogService: true
    enableTracing: true
    defaultConfig:
      envoyAccessLogService: {{address: "{telemetry.als_address}"}}
      tracing: {{zipkin: {{address: "127.0.0.1:{telemetry.zipkin_port}"}}}}
    extensionProviders:
    - name: errors-file
      envoyFileAccessLog: {{path: "{errors_log}"}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {{number: 9080, name: http, protocol: HTTP}}
  - {{number: 7070, name: grpc, protocol: GRPC}}
  - {{number: 5432, name: tcp-db, protocol: TCP}}
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: default, labels: {{security.istio.io/tlsMode: istio}}}}
spec: {{address: {SERVER_IP}, labels: {{app: reviews, version: v1}}, serviceAccount: bookinfo-reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: productpage-v1, namespace: default, labels: {{security.istio.io/tlsMode: istio}}}}
spec: {{address: {CLIENT_IP}, labels: {{app: productpage, version: v1}}, serviceAccount: bookinfo-productpage}}
"""


@dataclass
class World:
    config: ConfigEnv
    telemetry: TelemetryService
    mesh: Mesh
    client: Proxy
    server: Proxy
    errors_log: Path


def _grpc_server(host: str, port: int) -> grpc.Server:
    """Answers `/test.Echo/Call` with the status its `x-status` metadata asks for."""
    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        status = dict(context.invocation_metadata()).get("x-status", "0")
        if status != "0":
            context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == int(status))), "asked")
        return request

    handler = grpc.method_handlers_generic_handler("test.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("telemetry")
    for folder in ("logs", "mesh", "config"):
        (base / folder).mkdir()
    group = ProcessGroup(base / "logs")
    echo = EchoServer("reviews", SERVER_IP, APP_PORT).start()
    grpc_app = _grpc_server(SERVER_IP, GRPC_APP_PORT)
    try:
        with StreamEchoServer("db", SERVER_IP) as db:
            nats = start_nats(group, base / "nats")
            mesh = Mesh(group, nats, base / "mesh")
            env = ConfigEnv.start(mesh, base / "config")
            citadel = start_citadel(group, nats.url, base / "citadel")
            telemetry = mesh.telemetry()
            errors_log = base / "errors.log"
            env.apply("config", config(telemetry, errors_log))

            def sidecar(name: str, ip: str, account: str, app: str, **kwargs: Any) -> Proxy:
                return env.add_proxy(identity_sidecar(mesh, env.pilot, citadel, base, name, ip, account,
                                                      labels={"app": app, "version": "v1"}, **kwargs))

            client = sidecar("productpage-v1", CLIENT_IP, "bookinfo-productpage", "productpage")
            server = sidecar("reviews-v1", SERVER_IP, "bookinfo-reviews", "reviews",
                             app_ports={9080: APP_PORT, 7070: GRPC_APP_PORT, 5432: db.port})
            yield World(env, telemetry, mesh, client, server, errors_log)
    finally:
        grpc_app.stop(0)
        echo.stop()
        group.stop_all()


def samples(world: World, metric: str, **labels: str) -> float:
    """The sum of `metric`'s samples whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(world.telemetry.metrics()):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def series(world: World, metric: str, **labels: str) -> list[dict[str, str]]:
    return [dict(sample.labels) for family in text_string_to_metric_families(world.telemetry.metrics())
            for sample in family.samples
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items())]


def settle(world: World, metric: str, expected: float, **labels: str) -> None:
    """Wait until Envoy flushed its buffered entries (within a second) and the count is
    `expected`; then check it stays so (no entry counted twice)."""
    wait_until(lambda: samples(world, metric, **labels) >= expected, timeout=15,
               what=f"{metric}{labels} to reach {expected}")
    assert samples(world, metric, **labels) == expected


def via_client(path: str, **headers: str) -> httpx.Response:
    return via_http_proxy(f"{CLIENT_IP}:15001").get(f"http://reviews:9080{path}", headers=headers)


def test_http_requests_counted_exactly_on_both_sides_with_istios_labels(world: World) -> None:
    for _ in range(7):
        assert via_client("/exact").status_code == 200
    settle(world, "istio_requests_total", 7, reporter="destination", source_workload="productpage-v1",
           response_code="200")
    settle(world, "istio_requests_total", 7, reporter="source", destination_workload="reviews-v1",
           response_code="200")
    [destination] = series(world, "istio_requests_total", reporter="destination", source_workload="productpage-v1",
                           response_code="200")
    assert destination == {
        "reporter": "destination", "source_workload": "productpage-v1", "source_workload_namespace": "default",
        "source_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        "source_app": "productpage", "source_version": "v1", "source_cluster": "Kubernetes",
        "destination_workload": "reviews-v1", "destination_workload_namespace": "default",
        "destination_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        "destination_app": "reviews", "destination_version": "v1",
        "destination_service": "reviews.default.svc.cluster.local", "destination_service_name": "reviews",
        "destination_service_namespace": "default", "destination_cluster": "Kubernetes",
        "request_protocol": "http", "response_code": "200", "grpc_response_status": "", "response_flags": "-",
        "connection_security_policy": "mutual_tls"}
    [source] = series(world, "istio_requests_total", reporter="source", destination_workload="reviews-v1",
                      response_code="200")
    assert (source["source_workload"], source["connection_security_policy"], source["destination_service"]) == (
        "productpage-v1", "unknown", "reviews.default.svc.cluster.local")
    # The duration histogram counted the same requests.
    assert samples(world, "istio_request_duration_milliseconds_count", reporter="destination",
                   source_workload="productpage-v1", response_code="200") == 7
    assert samples(world, "istio_response_bytes_sum", reporter="destination", response_code="200") > 0
    # Telemetry wrote Istio's access log line for each.
    log = world.telemetry.access_log
    assert log is not None
    wait_until(lambda: log.read_text().count('"GET /exact HTTP/1.1" 200') >= 14, timeout=10,
               what="14 access log lines (both sides)")


def test_a_fault_injected_abort_is_counted_with_its_flag(world: World) -> None:
    world.config.apply("fault", """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - match: [{headers: {x-fault: {exact: abort}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: reviews.default.svc.cluster.local}}]
  - route: [{destination: {host: reviews.default.svc.cluster.local}}]
""")
    try:
        for _ in range(3):
            assert via_client("/fault", **{"x-fault": "abort"}).status_code == 418
        settle(world, "istio_requests_total", 3, reporter="source", response_code="418", response_flags="FI")
        # The request never reached reviews: its sidecar reported nothing.
        assert samples(world, "istio_requests_total", reporter="destination", response_code="418") == 0
    finally:
        world.config.remove("fault")


def test_grpc_status_is_reported(world: World) -> None:
    with grpc.insecure_channel(f"{SERVER_IP}:7070") as channel:
        call = channel.unary_unary("/test.Echo/Call")
        assert call(b"hi", metadata=(("x-status", "0"),), timeout=5) == b"hi"
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as failed:
                call(b"hi", metadata=(("x-status", "5"),), timeout=5)
            assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    settle(world, "istio_requests_total", 1, reporter="destination", request_protocol="grpc",
           grpc_response_status="0")
    settle(world, "istio_requests_total", 2, reporter="destination", request_protocol="grpc",
           grpc_response_status="5", response_code="200")


def test_tcp_bytes_and_connections(world: World) -> None:
    payloads = [b"hello database", b"one more connection"]
    for payload in payloads:
        with socket.create_connection((SERVER_IP, 5432), timeout=5, source_address=(OUTSIDE_IP, 0)) as conn:
            conn.sendall(payload)
            assert conn.recv(100) == b"db:" + payload
    settle(world, "istio_tcp_connections_closed_total", 2, reporter="destination", request_protocol="tcp")
    assert samples(world, "istio_tcp_connections_opened_total", reporter="destination") == 2
    assert samples(world, "istio_tcp_received_bytes_total", reporter="destination") == sum(map(len, payloads))
    assert samples(world, "istio_tcp_sent_bytes_total", reporter="destination") == sum(
        len(p) + len(b"db:") for p in payloads)
    [labels] = series(world, "istio_tcp_connections_closed_total", reporter="destination")
    assert (labels["source_workload"], labels["connection_security_policy"], labels["destination_workload"]) == (
        "unknown", "none", "reviews-v1")
    assert "response_code" not in labels


def _als_attempts(proxy: Proxy) -> tuple[int, int]:
    """(entries Envoy handed to its access log stream, connections to the service that failed)."""
    stats = proxy.admin.stats(r"grpc_access_log\.grpc_entries_flushed"
                              r"|envoy_accesslog_service\.upstream_cx_connect_fail$")
    return (stats.get("access_logs.grpc_access_log.grpc_entries_flushed", 0),
            stats.get("cluster.envoy_accesslog_service.upstream_cx_connect_fail", 0))


def test_telemetry_restarted_loses_only_entries_in_flight(world: World) -> None:
    world.telemetry.process.kill()
    proxies = (world.client, world.server)
    before = {proxy.node_id: _als_attempts(proxy) for proxy in proxies}
    for _ in range(3):
        assert via_client("/while-down").status_code == 200

    def given_up(proxy: Proxy) -> bool:
        flushed, failed = _als_attempts(proxy)
        return flushed >= before[proxy.node_id][0] + 3 and failed > before[proxy.node_id][1]

    # Envoy sent them into a stream whose connection failed: they are gone, none can arrive late.
    wait_until(lambda: all(given_up(p) for p in proxies), timeout=15,
               what="both proxies to lose the entries telemetry could not take")
    ports = (world.telemetry.als_port, world.telemetry.prometheus_port, world.telemetry.zipkin_port)
    world.telemetry = world.mesh.telemetry(name="telemetry-2", ports=ports)
    for _ in range(5):
        assert via_client("/after-restart").status_code == 200
    # Proxies reconnect their access log streams at the next flush; then exactly the 5.
    settle(world, "istio_requests_total", 5, reporter="destination", source_workload="productpage-v1")


def _span_reports(proxy: Proxy) -> tuple[int, int, int]:
    """(span batches the collector took, batches lost, collector connections Envoy closed idle)."""
    stats = proxy.admin.stats(r"tracing\.zipkin\.reports_(sent|dropped|failed)$"
                              r"|cluster\.zipkin\.upstream_cx_idle_timeout$")
    lost = stats.get("tracing.zipkin.reports_dropped", 0) + stats.get("tracing.zipkin.reports_failed", 0)
    return stats.get("tracing.zipkin.reports_sent", 0), lost, stats.get("cluster.zipkin.upstream_cx_idle_timeout", 0)


def test_span_batches_never_race_the_collectors_keep_alive(world: World) -> None:
    """Envoy posts spans every 5 s, as long as the collector keeps an idle connection: Envoy
    must close it first, or a post meets a closing connection and its spans are lost."""
    proxies = (world.client, world.server)
    before = {proxy.node_id: _span_reports(proxy) for proxy in proxies}
    trace_id = "5b8efff798038103d269b633813fc60c"
    assert via_client("/traced", **{"x-b3-traceid": trace_id, "x-b3-spanid": "eee19b7ec3c1b174",
                                    "x-b3-sampled": "1"}).status_code == 200

    def reported_and_closed(proxy: Proxy) -> bool:
        sent, _, closed = _span_reports(proxy)
        return sent > before[proxy.node_id][0] and closed > before[proxy.node_id][2]

    wait_until(lambda: all(reported_and_closed(p) for p in proxies), timeout=20,
               what="both proxies to post their spans and then close the idle collector connection")
    assert {proxy.node_id: _span_reports(proxy)[1] for proxy in proxies} == \
        {proxy.node_id: before[proxy.node_id][1] for proxy in proxies}
    spans = HTTP.get(f"{world.telemetry.zipkin}/api/v2/trace/{trace_id}", timeout=5).json()
    assert {span["kind"] for span in spans} == {"CLIENT", "SERVER"}


def test_health_checkers_are_not_counted(world: World) -> None:
    def entries(outcome: str) -> float:
        return world.telemetry.metric("telemetry_access_log_entries_total", kind="http", outcome=outcome)

    before = samples(world, "istio_requests_total", reporter="destination")
    before_entries = entries("counted"), entries("skipped")
    for agent in ("kube-probe/1.30", "Prometheus/2.45.0"):
        assert via_client("/healthz", **{"user-agent": agent}).status_code == 200
    assert via_client("/counted").status_code == 200
    settle(world, "istio_requests_total", before + 1, reporter="destination")
    # Each request is an entry from the client's sidecar and one from the server's, each
    # sidecar flushing its own buffer: the server's may arrive before the client's.
    wait_until(lambda: entries("counted") >= before_entries[0] + 2 and entries("skipped") >= before_entries[1] + 4,
               timeout=15, what="both sidecars' entries tallied")
    assert (entries("counted") - before_entries[0], entries("skipped") - before_entries[1]) == (2, 4)


def test_the_telemetry_api_drops_metrics_and_shapes_envoys_access_log(world: World) -> None:
    world.config.apply("telemetry", """\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  metrics:
  - overrides:
    - {match: {metric: REQUEST_COUNT, mode: SERVER}, disabled: true}
    - tagOverrides: {path: {value: request.url_path}}
  accessLogging:
  - providers: [{name: errors-file}]
    filter: {expression: "response.code >= 400"}
""")
    # Telemetry applies the overrides from its own copy of mesh-config, and the access log
    # filter replaced reviews' listener: both must be in place before the requests.
    revision = config_revision(world.mesh.nats.url)
    wait_until(lambda: world.telemetry.metric("telemetry_config_revision") >= revision, timeout=15,
               what=f"telemetry to run revision {revision}")
    world.config.drained()
    try:
        before = samples(world, "istio_request_duration_milliseconds_count", reporter="destination",
                         path="/api-shaped")
        assert via_client("/api-shaped").status_code == 200
        # 500, not 503, which the caller's sidecar retries (Istio's default retry policy).
        assert via_client("/api-shaped", **{"x-echo-status": "500"}).status_code == 500
        settle(world, "istio_request_duration_milliseconds_count", before + 2, reporter="destination",
               path="/api-shaped")
        # reviews' own request count is off; productpage's (the caller's) still counts, once
        # its Envoy's access log stream (a separate one, flushed on its own clock) is in.
        wait_until(lambda: samples(world, "istio_requests_total", reporter="source", response_code="500") >= 1,
                   timeout=15, what="productpage's report of the 500")
        assert samples(world, "istio_requests_total", reporter="destination", path="/api-shaped") == 0
        # reviews' Envoy logged only the failed request, to the provider's file.
        wait_until(lambda: world.errors_log.exists() and "/api-shaped" in world.errors_log.read_text(),
                   timeout=10, what="the error to be logged")
        lines = [line for line in world.errors_log.read_text().splitlines() if "/api-shaped" in line]
        assert len(lines) == 1 and " 500 " in lines[0]
    finally:
        world.config.remove("telemetry")


def test_series_of_a_workload_that_left_expire(world: World) -> None:
    """A telemetry that forgets idle series after 3 s: reviews' series go once reviews is quiet,
    and the counters start again from zero when it is back (Istio #35066)."""
    ports = (world.telemetry.als_port, world.telemetry.prometheus_port, world.telemetry.zipkin_port)
    world.telemetry.process.stop()
    world.telemetry = world.mesh.telemetry("--metric-expiry-s", "3", name="telemetry-expiring", ports=ports)
    assert via_client("/before-leaving").status_code == 200
    settle(world, "istio_requests_total", 1, reporter="destination", destination_workload="reviews-v1")
    wait_until(lambda: not series(world, "istio_requests_total", destination_workload="reviews-v1"), timeout=20,
               what="reviews' series to expire")
    assert via_client("/back").status_code == 200
    settle(world, "istio_requests_total", 1, reporter="destination", destination_workload="reviews-v1")
