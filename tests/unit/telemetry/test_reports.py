"""From Envoy's access log entries to Istio's metric labels and counts, pure: who reported,
who called whom, which service, and what a hostile Host header cannot do."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from google.protobuf import struct_pb2
from prometheus_client import CollectorRegistry, generate_latest

from libs.config import parse_text
from libs.config.directory import build
from libs.config.workloads import WorkloadRegistration
from services.telemetry.metrics import MetricStore
from services.telemetry.reports import Reporter, http_report, tcp_report

SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
  resolution: STATIC
"""
REGISTRATIONS = [
    WorkloadRegistration("productpage-v1", "default", "127.0.10.1", {"app": "productpage", "version": "v1"},
                         "bookinfo-productpage"),
    WorkloadRegistration("reviews-v2", "default", "127.0.10.4", {"app": "reviews", "version": "v2"},
                         "bookinfo-reviews"),
]
DIRECTORY = build(REGISTRATIONS, [r for _, r in parse_text(SERVICES, "s").resources])


def node(name: str, ip: str, labels: dict[str, str], account: str) -> base_pb2.Node:
    metadata = struct_pb2.Struct()
    metadata.update({"NAMESPACE": "default", "LABELS": labels, "WORKLOAD_NAME": name, "SERVICE_ACCOUNT": account,
                     "MIZZEN_IDENTITY": "true", "TRUST_DOMAIN": "cluster.local", "CLUSTER_ID": "Kubernetes"})
    return base_pb2.Node(id=f"sidecar~{ip}~{name}.default~default.svc.cluster.local", metadata=metadata)


PRODUCTPAGE = Reporter.from_node(node("productpage-v1", "127.0.10.1", {"app": "productpage", "version": "v1"},
                                      "bookinfo-productpage"))
REVIEWS = Reporter.from_node(node("reviews-v2", "127.0.10.4", {"app": "reviews", "version": "v2"}, "bookinfo-reviews"))


def http_entry(cluster: str, *, peer: str, upstream: str = "", code: int = 200, authority: str = "reviews:9080",
               mtls_peer: str = "", user_agent: str = "curl/8", grpc: str = "") -> accesslog_pb2.HTTPAccessLogEntry:
    entry = accesslog_pb2.HTTPAccessLogEntry()
    common = entry.common_properties
    common.upstream_cluster = cluster
    common.downstream_direct_remote_address.socket_address.address = peer
    if upstream:
        common.upstream_remote_address.socket_address.address = upstream
    if mtls_peer:
        common.tls_properties.peer_certificate_properties.subject_alt_name.add(uri=mtls_peer)
    common.time_to_last_downstream_tx_byte.nanos = 7_000_000
    entry.request.authority = authority
    entry.request.user_agent = user_agent
    entry.request.request_headers_bytes = 100
    entry.response.response_code.value = code
    entry.response.response_body_bytes = 300
    if grpc:
        entry.request.request_headers["content-type"] = "application/grpc"
        entry.response.response_trailers["grpc-status"] = grpc
    return entry


def test_destination_side_knows_its_caller_by_address_and_certificate() -> None:
    report = http_report(http_entry("inbound|9080||", peer="127.0.10.1",
                                    mtls_peer="spiffe://cluster.local/ns/default/sa/bookinfo-productpage"),
                         REVIEWS, DIRECTORY)
    assert report is not None
    assert report.label_map() == {
        "reporter": "destination", "source_workload": "productpage-v1", "source_workload_namespace": "default",
        "source_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage", "source_app": "productpage",
        "source_version": "v1", "source_cluster": "Kubernetes", "destination_workload": "reviews-v2",
        "destination_workload_namespace": "default",
        "destination_principal": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        "destination_app": "reviews", "destination_version": "v2",
        "destination_service": "reviews.default.svc.cluster.local", "destination_service_name": "reviews",
        "destination_service_namespace": "default", "destination_cluster": "Kubernetes",
        "request_protocol": "http", "response_code": "200", "grpc_response_status": "",
        "response_flags": "-", "connection_security_policy": "mutual_tls"}
    assert (report.duration_ms, report.request_bytes, report.response_bytes) == (7.0, 100, 300)


def test_source_side_names_the_service_from_its_cluster_and_the_peer_by_address() -> None:
    report = http_report(http_entry("outbound|9080|v2|reviews.default.svc.cluster.local", peer="127.0.10.1",
                                    upstream="127.0.10.4", code=503), PRODUCTPAGE, DIRECTORY)
    assert report is not None
    labels = report.label_map()
    assert (labels["reporter"], labels["source_workload"], labels["destination_workload"],
            labels["destination_version"], labels["destination_service"], labels["response_code"],
            labels["connection_security_policy"]) == ("source", "productpage-v1", "reviews-v2", "v2",
                                                      "reviews.default.svc.cluster.local", "503", "unknown")


def test_unknown_peers_are_unknown_never_empty() -> None:
    report = http_report(http_entry("inbound|9080||", peer="10.9.9.9"), REVIEWS, DIRECTORY)
    assert report is not None
    labels = report.label_map()
    assert all(value != "" for name, value in labels.items() if name != "grpc_response_status")
    assert (labels["source_workload"], labels["source_principal"], labels["connection_security_policy"]) == (
        "unknown", "unknown", "none")


def test_a_hostile_host_header_cannot_mint_services() -> None:
    names = {http_report(http_entry("inbound|9080||", peer="127.0.10.1", authority=f"evil-{i}.example:80"),
                         REVIEWS, DIRECTORY).label_map()["destination_service"]  # type: ignore[union-attr]
             for i in range(50)}
    assert names == {"reviews.default.svc.cluster.local"}


def test_health_checks_and_prometheus_are_not_counted() -> None:
    for agent in ("kube-probe/1.29", "Prometheus/2.45.0"):
        assert http_report(http_entry("inbound|9080||", peer="127.0.10.1", user_agent=agent), REVIEWS,
                           DIRECTORY) is None


def test_grpc_status_and_response_flags() -> None:
    entry = http_entry("outbound|9080||reviews.default.svc.cluster.local", peer="127.0.10.1", grpc="14", code=200)
    entry.common_properties.response_flags.upstream_connection_failure = True
    entry.common_properties.response_flags.upstream_retry_limit_exceeded = True
    labels = http_report(entry, PRODUCTPAGE, DIRECTORY).label_map()  # type: ignore[union-attr]
    assert (labels["request_protocol"], labels["grpc_response_status"], labels["response_flags"]) == (
        "grpc", "14", "UF,URX")


def test_tcp_connections_are_counted_opened_and_closed_with_their_bytes() -> None:
    store = MetricStore()

    def tcp(kind: int, sent: int = 0, received: int = 0) -> accesslog_pb2.TCPAccessLogEntry:
        entry = accesslog_pb2.TCPAccessLogEntry()
        entry.common_properties.upstream_cluster = "inbound|5432||"
        entry.common_properties.access_log_type = kind  # type: ignore[assignment]
        entry.common_properties.downstream_direct_remote_address.socket_address.address = "127.0.10.1"
        entry.connection_properties.sent_bytes = sent
        entry.connection_properties.received_bytes = received
        return entry

    for entry in (tcp(accesslog_pb2.TcpUpstreamConnected), tcp(accesslog_pb2.TcpPeriodic, 5, 5),
                  tcp(accesslog_pb2.TcpConnectionEnd, 40, 12)):
        report = tcp_report(entry, REVIEWS, DIRECTORY)
        if report is not None:
            store.add_tcp(report)
    registry = CollectorRegistry()
    registry.register(store)
    text = generate_latest(registry).decode()
    lines = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line.startswith("istio_tcp")}
    assert lines == {"istio_tcp_sent_bytes_total": 40, "istio_tcp_received_bytes_total": 12,
                     "istio_tcp_connections_opened_total": 1, "istio_tcp_connections_closed_total": 1}
    assert 'request_protocol="tcp"' in text and "response_code=" not in text.split("istio_tcp", 1)[1]


def test_series_expire_when_idle() -> None:
    now = [0.0]
    store = MetricStore(expiry_s=60, clock=lambda: now[0])
    store.add_http(http_report(http_entry("inbound|9080||", peer="127.0.10.1"), REVIEWS, DIRECTORY))  # type: ignore[arg-type]
    now[0] = 30
    store.add_http(http_report(http_entry("inbound|9080||", peer="10.0.0.1"), REVIEWS, DIRECTORY))  # type: ignore[arg-type]
    assert store.series == 2 * 4  # the request counter and three histograms each
    now[0] = 80
    assert store.expire() == 4 and store.series == 4


def test_a_series_back_after_expiring_counts_from_zero_and_is_served() -> None:
    now = [0.0]
    store = MetricStore(expiry_s=60, clock=lambda: now[0])
    report = http_report(http_entry("inbound|9080||", peer="127.0.10.1"), REVIEWS, DIRECTORY)
    assert report is not None
    store.add_http(report)
    store.add_http(report)
    now[0] = 100
    assert store.expire() == 4
    store.add_http(report)
    assert [count for _labels, count, _buckets, _sum in store.http_series()] == [1]
    exposed = b"".join(store.exposition()).decode()
    assert [line.rsplit(" ", 1)[1] for line in exposed.splitlines()
            if line.startswith("istio_request_bytes_count{")] == ["1.0"]


def test_histograms_use_envoys_buckets_and_count_exactly() -> None:
    store = MetricStore()
    for _ in range(3):
        store.add_http(http_report(http_entry("inbound|9080||", peer="127.0.10.1"), REVIEWS, DIRECTORY))  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(store)
    text = generate_latest(registry).decode()
    assert [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith("istio_requests_total{")] == ["3.0"]
    bucket = next(line for line in text.splitlines()
                  if line.startswith("istio_request_duration_milliseconds_bucket") and 'le="10"' in line)
    assert bucket.endswith(" 3.0")
    assert 'le="3600000"' in text and 'le="0.5"' in text


def test_the_direct_exposition_says_what_the_collector_says() -> None:
    """telemetry serves `exposition()` (no per-sample objects); it must parse to the same samples."""
    from prometheus_client.parser import text_string_to_metric_families

    store = MetricStore()
    for code in (200, 503, 200):
        store.add_http(http_report(http_entry("inbound|9080||", peer="127.0.10.1", code=code,  # type: ignore[arg-type]
                                              authority='we"ird\\host'), REVIEWS, DIRECTORY))
    registry = CollectorRegistry()
    registry.register(store)

    def samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {(s.name, tuple(sorted(s.labels.items())), s.value)
                for family in text_string_to_metric_families(text) for s in family.samples}

    assert samples(b"".join(store.exposition(chunk_bytes=100)).decode()) == samples(generate_latest(registry).decode())
