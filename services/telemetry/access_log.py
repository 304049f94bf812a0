"""Istio's access log lines, written by telemetry from the entries proxies stream to it:
the default TEXT format (pilot/pkg/model/telemetry_logging.go) or its JSON fields, as the
mesh config's `accessLogEncoding` says.  One line per HTTP request or TCP connection end.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2

from services.telemetry.reports import response_flags

_PROTOCOLS = {accesslog_pb2.HTTPAccessLogEntry.HTTP10: "HTTP/1.0", accesslog_pb2.HTTPAccessLogEntry.HTTP11: "HTTP/1.1",
              accesslog_pb2.HTTPAccessLogEntry.HTTP2: "HTTP/2", accesslog_pb2.HTTPAccessLogEntry.HTTP3: "HTTP/3"}


def _address(address: address_pb2.Address) -> str:
    if address.HasField("socket_address"):
        return f"{address.socket_address.address}:{address.socket_address.port_value}"
    return "-"


def _ms(duration: Any) -> int:
    return int(duration.seconds * 1000 + duration.nanos // 1_000_000)


def _or_dash(value: Any) -> str:
    return str(value) if value not in ("", None) else "-"


def _common_fields(common: accesslog_pb2.AccessLogCommon) -> dict[str, Any]:
    started = common.start_time.ToDatetime(tzinfo=datetime.UTC)
    return {
        "start_time": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "response_flags": response_flags(common.response_flags),
        "connection_termination_details": _or_dash(common.connection_termination_details),
        "upstream_transport_failure_reason": _or_dash(common.upstream_transport_failure_reason),
        "duration": _ms(common.duration if common.HasField("duration") else common.time_to_last_downstream_tx_byte),
        "upstream_host": _address(common.upstream_remote_address),
        "upstream_cluster": _or_dash(common.upstream_cluster),
        "upstream_local_address": _address(common.upstream_local_address),
        "downstream_local_address": _address(common.downstream_local_address),
        "downstream_remote_address": _address(common.downstream_remote_address),
        "requested_server_name": _or_dash(common.tls_properties.tls_sni_hostname),
        "route_name": _or_dash(common.route_name),
    }


def http_fields(entry: accesslog_pb2.HTTPAccessLogEntry) -> dict[str, Any]:
    request, response = entry.request, entry.response
    return {
        **_common_fields(entry.common_properties),
        "method": base_pb2.RequestMethod.Name(request.request_method) if request.request_method else "-",
        "path": _or_dash(request.original_path or request.path),
        "protocol": _PROTOCOLS.get(entry.protocol_version, "-"),
        "response_code": response.response_code.value if response.HasField("response_code") else 0,
        "response_code_details": _or_dash(response.response_code_details),
        "bytes_received": request.request_body_bytes,
        "bytes_sent": response.response_body_bytes,
        "upstream_service_time": _or_dash(response.response_headers.get("x-envoy-upstream-service-time")),
        "x_forwarded_for": _or_dash(request.forwarded_for),
        "user_agent": _or_dash(request.user_agent),
        "request_id": _or_dash(request.request_id),
        "authority": _or_dash(request.authority),
    }


def tcp_fields(entry: accesslog_pb2.TCPAccessLogEntry) -> dict[str, Any]:
    return {**_common_fields(entry.common_properties), "method": "-", "path": "-", "protocol": "-",
            "response_code": 0, "response_code_details": "-", "bytes_received":
            entry.connection_properties.received_bytes, "bytes_sent": entry.connection_properties.sent_bytes,
            "upstream_service_time": "-", "x_forwarded_for": "-", "user_agent": "-", "request_id": "-",
            "authority": "-"}


def text_line(fields: dict[str, Any]) -> str:
    f = fields
    return (f'[{f["start_time"]}] "{f["method"]} {f["path"]} {f["protocol"]}" {f["response_code"]} '
            f'{f["response_flags"]} {f["response_code_details"]} {f["connection_termination_details"]} '
            f'"{f["upstream_transport_failure_reason"]}" {f["bytes_received"]} {f["bytes_sent"]} {f["duration"]} '
            f'{f["upstream_service_time"]} "{f["x_forwarded_for"]}" "{f["user_agent"]}" "{f["request_id"]}" '
            f'"{f["authority"]}" "{f["upstream_host"]}" {f["upstream_cluster"]} {f["upstream_local_address"]} '
            f'{f["downstream_local_address"]} {f["downstream_remote_address"]} {f["requested_server_name"]} '
            f'{f["route_name"]}')


class AccessLogWriter:
    """Formats entries as Istio does and hands each line to `write`."""

    def __init__(self, write: Callable[[str], None], encoding: str = "TEXT") -> None:
        self._write = write
        self.encoding = encoding

    def http(self, entry: accesslog_pb2.HTTPAccessLogEntry) -> None:
        self._line(http_fields(entry))

    def tcp(self, entry: accesslog_pb2.TCPAccessLogEntry) -> None:
        if entry.common_properties.access_log_type == accesslog_pb2.TcpConnectionEnd:
            self._line(tcp_fields(entry))

    def _line(self, fields: dict[str, Any]) -> None:
        self._write(json.dumps(fields, separators=(",", ":")) if self.encoding == "JSON" else text_line(fields))
