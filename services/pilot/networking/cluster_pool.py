"""DestinationRule `connectionPool` -> circuit breakers, connect timeout, TCP keepalive and
the cluster's HTTP protocol options (Istio's applyConnectionPool and applyH2Upgrade).

Every outbound cluster gets circuit breakers, DestinationRule or not: Istio raises Envoy's
defaults (1024 connections, pending and active requests, 3 retries) to 2^32-1 so that only
limits a user asked for apply.  Like Istio, a limit of 0 means "not set".
"""

from __future__ import annotations

from typing import Any, TypeAlias

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from libs.config.durations import to_seconds
from libs.envoy import HTTP_OPTIONS, duration, pack

MAX_THRESHOLD = 2**32 - 1

HttpOptions: TypeAlias = http_protocol_options_pb2.HttpProtocolOptions
Thresholds: TypeAlias = circuit_breaker_pb2.CircuitBreakers.Thresholds


def protocol_options(cluster: cluster_pb2.Cluster) -> HttpOptions:
    """The cluster's HttpProtocolOptions so far (clusters.py sets HTTP/2 for HTTP2/GRPC ports)."""
    options = HttpOptions()
    if HTTP_OPTIONS in cluster.typed_extension_protocol_options:
        cluster.typed_extension_protocol_options[HTTP_OPTIONS].Unpack(options)
    return options


def store_protocol_options(cluster: cluster_pb2.Cluster, options: HttpOptions) -> None:
    if not options.ListFields():
        return
    if not options.WhichOneof("upstream_protocol_options"):
        # Envoy requires a protocol; without one asked for it is HTTP/1.1.
        options.explicit_http_config.http_protocol_options.SetInParent()
    cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(pack(options))


def is_http2(options: HttpOptions) -> bool:
    return options.explicit_http_config.HasField("http2_protocol_options")


def default_thresholds() -> Thresholds:
    return Thresholds(
        max_connections={"value": MAX_THRESHOLD},
        max_pending_requests={"value": MAX_THRESHOLD},
        max_requests={"value": MAX_THRESHOLD},
        max_retries={"value": MAX_THRESHOLD},
        track_remaining=True,
    )


def _keepalive(cluster: cluster_pb2.Cluster, keepalive: dict[str, Any] | None) -> None:
    if keepalive is None:
        return
    # An empty message already turns SO_KEEPALIVE on with the kernel's timings.
    settings = cluster.upstream_connection_options.tcp_keepalive
    settings.SetInParent()
    if keepalive.get("probes", 0) > 0:
        settings.keepalive_probes.value = keepalive["probes"]
    # Envoy takes whole seconds; Istio truncates, Mizzen keeps a sub-second value at 1 s.
    for field, target in (("time", settings.keepalive_time), ("interval", settings.keepalive_interval)):
        if field in keepalive:
            seconds = to_seconds(keepalive[field])
            target.value = max(int(seconds), 1 if seconds > 0 else 0)


def _use_h2(options: HttpOptions) -> None:
    if not is_http2(options):
        options.explicit_http_config.http2_protocol_options.SetInParent()


def apply_h2_upgrade(options: HttpOptions, http: dict[str, Any]) -> None:
    """`h2UpgradePolicy: UPGRADE` speaks HTTP/2 to the upstream.  DO_NOT_UPGRADE and DEFAULT
    (the mesh default, DO_NOT_UPGRADE) leave the port's protocol as it is, as in Istio."""
    if http.get("h2UpgradePolicy") == "UPGRADE":
        _use_h2(options)


def _http_options(options: HttpOptions, http: dict[str, Any], tcp: dict[str, Any]) -> None:
    common = options.common_http_protocol_options
    idle = http.get("idleTimeout", tcp.get("idleTimeout"))
    if idle is not None:
        common.idle_timeout.CopyFrom(duration(to_seconds(idle)))
    if http.get("maxRequestsPerConnection", 0) > 0:
        common.max_requests_per_connection.value = http["maxRequestsPerConnection"]
    if "maxConnectionDuration" in tcp:
        common.max_connection_duration.CopyFrom(duration(to_seconds(tcp["maxConnectionDuration"])))
    if http.get("useClientProtocol"):
        # Speak to the upstream whatever the client spoke to Envoy.
        options.use_downstream_protocol_config.http_protocol_options.SetInParent()
        options.use_downstream_protocol_config.http2_protocol_options.SetInParent()
    if is_http2(options) and http.get("maxConcurrentStreams", 0) > 0:
        options.explicit_http_config.http2_protocol_options.max_concurrent_streams.value = \
            http["maxConcurrentStreams"]


def apply_connection_pool(cluster: cluster_pb2.Cluster, options: HttpOptions, pool: dict[str, Any]) -> None:
    http = pool.get("http", {})
    tcp = pool.get("tcp", {})
    threshold = default_thresholds()
    if http.get("http2MaxRequests", 0) > 0:
        threshold.max_requests.value = http["http2MaxRequests"]
    if http.get("http1MaxPendingRequests", 0) > 0:
        threshold.max_pending_requests.value = http["http1MaxPendingRequests"]
    if http.get("maxRetries", 0) > 0:
        threshold.max_retries.value = http["maxRetries"]
    if tcp.get("maxConnections", 0) > 0:
        threshold.max_connections.value = tcp["maxConnections"]
    if "connectTimeout" in tcp:
        cluster.connect_timeout.CopyFrom(duration(to_seconds(tcp["connectTimeout"])))
    cluster.circuit_breakers.CopyFrom(circuit_breaker_pb2.CircuitBreakers(thresholds=[threshold]))
    per_host = pool.get("perHostLimits", {}).get("maxConnections", 0)
    if per_host > 0:
        # Envoy honours only max_connections per host.
        cluster.circuit_breakers.per_host_thresholds.append(Thresholds(max_connections={"value": per_host}))
    _keepalive(cluster, tcp.get("tcpKeepalive"))
    _http_options(options, http, tcp)
