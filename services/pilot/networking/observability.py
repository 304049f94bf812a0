"""What every proxy reports, as the mesh config asks: access log entries to a file and to
the gRPC access log service (where telemetry turns them into Istio's metrics), and Zipkin
spans.

Stock Envoy has no Istio stats filter, so metrics come from access log entries, as
Istio 1.0's Mixer made them from reports: each HTTP connection manager and tcp_proxy
streams one entry per request or connection, with the headers telemetry needs (content
type and grpc-status for gRPC).  TCP proxies also log when a connection opens, so
telemetry counts opened and closed connections apart.  Telemetry tells the reporter
(source or destination) from the entry's upstream cluster (`inbound|…` or not).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from typing import Any

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2
from envoy.config.trace.v3 import http_tracer_pb2, zipkin_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.filters.cel.v3 import cel_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from google.protobuf import struct_pb2

from libs.envoy import HTTP_OPTIONS, duration, pack
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.telemetry import ENVOY_PROVIDER, NO_TELEMETRY, CustomTag, TelemetryView
from services.pilot.networking.clusters import use_http2
from services.pilot.networking.endpoints import socket_address

# Istio's cluster names for the access log service and the Zipkin collector.
ALS_CLUSTER = "envoy_accesslog_service"
ZIPKIN_CLUSTER = "zipkin"
ZIPKIN_PATH = "/api/v2/spans"
FILE_LOGGER = "envoy.access_loggers.file"
HTTP_GRPC_LOGGER = "envoy.access_loggers.http_grpc"
TCP_GRPC_LOGGER = "envoy.access_loggers.tcp_grpc"
ZIPKIN_TRACER = "envoy.tracers.zipkin"
CEL_FILTER = "envoy.access_loggers.extension_filters.cel"
# Entries leave at least once a second (Envoy's default), or at 32 KB, twice Envoy's default:
# telemetry pays ~0.5 ms of CPU per message in Python gRPC whatever its size, so at a few
# hundred requests a second the message, not the entry, was most of its cost
# (`python -m bench telemetry`: 0.063 -> 0.047 vCPU per 1,000 mesh requests/s).  Bigger
# batches cost the data path: at 64 KB the saturated p99 through a sidecar rose by 0.9 ms
# (0.38 ms at 32 KB), in Envoy itself (telemetry at a lower CPU priority changed nothing);
# Envoy's gRPC logger flushes on the worker whose entry fills the buffer.
ALS_FLUSH_S = 1.0
ALS_BUFFER_BYTES = 32 * 1024
# Envoy posts spans every 5 s (runtime tracing.zipkin.flush_interval_ms), so the collector's
# keep-alive connection sits idle for just that long, and collectors close idle connections
# after about as long (uvicorn, telemetry's server, after 5 s).  A post racing that close is a
# reset, and Envoy drops the batch (`tracing.zipkin.reports_dropped`): the trace loses its
# spans.  Closing first, well before the next flush, costs one connect per flush.
ZIPKIN_IDLE_TIMEOUT_S = 2.0

# Istio's default TEXT access log format (pilot/pkg/model/telemetry_logging.go).
TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% '
    '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n'
)
# Istio's default JSON access log fields.
JSON_FORMAT = {
    "start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%", "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%", "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%",
}


def _file_log(mesh: MeshConfig) -> accesslog_pb2.AccessLog:
    config = file_pb2.FileAccessLog(path=mesh.access_log_file)
    if mesh.access_log_encoding == "JSON":
        fields = json.loads(mesh.access_log_format) if mesh.access_log_format else JSON_FORMAT
        structured = struct_pb2.Struct()
        structured.update(fields)
        config.log_format.json_format.CopyFrom(structured)
    else:
        text = mesh.access_log_format or TEXT_FORMAT
        config.log_format.text_format_source.inline_string = text if text.endswith("\n") else text + "\n"
    return accesslog_pb2.AccessLog(name=FILE_LOGGER, typed_config=pack(config))


def _common(log_name: str) -> als_pb2.CommonGrpcAccessLogConfig:
    return als_pb2.CommonGrpcAccessLogConfig(
        log_name=log_name, transport_api_version=config_source_pb2.V3,
        grpc_service=grpc_service_pb2.GrpcService(
            envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=ALS_CLUSTER)),
        buffer_flush_interval=duration(ALS_FLUSH_S))


def _providers(mesh: MeshConfig) -> dict[str, dict[str, Any]]:
    return {p.get("name", ""): p for p in json.loads(mesh.extension_providers_json)}


def _file_logs(mesh: MeshConfig, view: TelemetryView, *, inbound: bool) -> list[accesslog_pb2.AccessLog]:
    """The access logs Envoy writes itself: the mesh config's `accessLogFile`, unless the
    Telemetry API says which providers log (Istio's `envoy` provider is that file, stdout
    by default; `envoyFileAccessLog` providers name their own), and for which requests."""
    if view.access_logging is None:
        return [_file_log(mesh)] if mesh.access_log_file else []
    entries = [entry for entry in view.access_logging if entry.applies(inbound=inbound)]
    if any(entry.disabled for entry in entries):
        return []
    providers = _providers(mesh)
    logs: list[accesslog_pb2.AccessLog] = []
    for entry in entries:
        for name in entry.providers:
            if name == ENVOY_PROVIDER:
                log = _file_log(replace(mesh, access_log_file=mesh.access_log_file or "/dev/stdout"))
            elif "envoyFileAccessLog" in providers.get(name, {}):
                body = providers[name]["envoyFileAccessLog"]
                log_format = body.get("logFormat", {})
                log = _file_log(replace(
                    mesh, access_log_file=body.get("path", "/dev/stdout"),
                    access_log_encoding="JSON" if "labels" in log_format else "TEXT",
                    access_log_format=json.dumps(log_format["labels"]) if "labels" in log_format
                    else log_format.get("text", "")))
            else:
                # Access log services (envoyHttpAls) feed telemetry's metrics, which are not
                # the Telemetry API's accessLogging to turn off: they are configured apart.
                continue
            if entry.filter:
                log.filter.extension_filter.name = CEL_FILTER
                log.filter.extension_filter.typed_config.CopyFrom(pack(cel_pb2.ExpressionFilter(
                    expression=entry.filter)))
            logs.append(log)
    return logs


def http_access_logs(mesh: MeshConfig, *, inbound: bool,
                     view: TelemetryView = NO_TELEMETRY) -> list[accesslog_pb2.AccessLog]:
    logs = _file_logs(mesh, view, inbound=inbound)
    if mesh.access_log_service:
        config = als_pb2.HttpGrpcAccessLogConfig(
            common_config=_common("inbound" if inbound else "outbound"),
            additional_request_headers_to_log=["content-type"],
            additional_response_headers_to_log=["content-type", "grpc-status"],
            additional_response_trailers_to_log=["grpc-status"])
        config.common_config.buffer_size_bytes.value = ALS_BUFFER_BYTES
        logs.append(accesslog_pb2.AccessLog(name=HTTP_GRPC_LOGGER, typed_config=pack(config)))
    return logs


def tcp_access_logs(mesh: MeshConfig, *, inbound: bool,
                    view: TelemetryView = NO_TELEMETRY) -> list[accesslog_pb2.AccessLog]:
    logs = _file_logs(mesh, view, inbound=inbound)
    if mesh.access_log_service:
        config = als_pb2.TcpGrpcAccessLogConfig(common_config=_common("inbound-tcp" if inbound else "outbound-tcp"))
        config.common_config.buffer_size_bytes.value = ALS_BUFFER_BYTES
        logs.append(accesslog_pb2.AccessLog(name=TCP_GRPC_LOGGER, typed_config=pack(config)))
    return logs


def observe_http(manager: hcm.HttpConnectionManager, mesh: MeshConfig, *, inbound: bool,
                 view: TelemetryView = NO_TELEMETRY) -> hcm.HttpConnectionManager:
    """Access logs and tracing on one HTTP connection manager, as the mesh config and the
    Telemetry API ask."""
    manager.access_log.extend(http_access_logs(mesh, inbound=inbound, view=view))
    tracing = view.tracing if view.tracing is not None and view.tracing.applies(inbound=inbound) else None
    if tracing is not None and tracing.disabled:
        return manager
    if mesh.enable_tracing and mesh.zipkin_address:
        zipkin = zipkin_pb2.ZipkinConfig(
            collector_cluster=ZIPKIN_CLUSTER, collector_endpoint=ZIPKIN_PATH, trace_id_128bit=True,
            collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON)
        # Istio's: the server side of a hop is its own span, a child of the client's.
        zipkin.shared_span_context.value = False
        manager.tracing.provider.CopyFrom(http_tracer_pb2.Tracing.Http(name=ZIPKIN_TRACER, typed_config=pack(zipkin)))
        manager.tracing.random_sampling.value = mesh.tracing_sampling
        if tracing is not None:
            if tracing.sampling is not None:
                manager.tracing.random_sampling.value = tracing.sampling
            manager.tracing.custom_tags.extend(_custom_tag(tag) for tag in tracing.custom_tags)
    return manager


def _custom_tag(tag: CustomTag) -> custom_tag_pb2.CustomTag:
    found = custom_tag_pb2.CustomTag(tag=tag.tag)
    if tag.kind == "literal":
        found.literal.value = tag.value
    elif tag.kind == "environment":
        found.environment.name = tag.value
        found.environment.default_value = tag.default
    else:
        found.request_header.name = tag.value
        found.request_header.default_value = tag.default
    return found


def observe_tcp(proxy: tcp_proxy_pb2.TcpProxy, mesh: MeshConfig, *, inbound: bool,
                view: TelemetryView = NO_TELEMETRY) -> tcp_proxy_pb2.TcpProxy:
    logs = tcp_access_logs(mesh, inbound=inbound, view=view)
    proxy.access_log.extend(logs)
    if mesh.access_log_service:
        # An entry when the connection opens, and one when it closes (bytes, duration).
        proxy.access_log_options.flush_access_log_on_connected = True
    return proxy


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def address_cluster(name: str, address: str, connect_timeout_s: float, *, http2: bool) -> cluster_pb2.Cluster:
    """A cluster for one `host:port` a mesh service of the control plane answers on
    (telemetry's access log service and Zipkin, the policy service)."""
    host, port = _host_port(address)
    cluster = cluster_pb2.Cluster(name=name, connect_timeout=duration(connect_timeout_s),
                                  type=cluster_pb2.Cluster.STATIC if _is_ip(host) else cluster_pb2.Cluster.STRICT_DNS)
    cluster.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
    cluster.load_assignment.cluster_name = name
    cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address.CopyFrom(socket_address(host, port))
    if http2:
        use_http2(cluster)
    return cluster


def _zipkin_cluster(mesh: MeshConfig) -> cluster_pb2.Cluster:
    cluster = address_cluster(ZIPKIN_CLUSTER, mesh.zipkin_address, mesh.connect_timeout_s, http2=False)
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http_protocol_options.SetInParent()
    options.common_http_protocol_options.idle_timeout.CopyFrom(duration(ZIPKIN_IDLE_TIMEOUT_S))
    cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(pack(options))
    return cluster


def clusters(mesh: MeshConfig) -> list[cluster_pb2.Cluster]:
    """The clusters the loggers and the tracer send to, in every Envoy's CDS."""
    found = []
    if mesh.access_log_service:
        found.append(address_cluster(ALS_CLUSTER, mesh.access_log_service, mesh.connect_timeout_s, http2=True))
    if mesh.enable_tracing and mesh.zipkin_address:
        found.append(_zipkin_cluster(mesh))
    return found


