"""From one Envoy access log entry to Istio's report: the reporter, the labels of Istio's
standard metrics, and the numbers they count.  Pure: the entry, the reporting proxy and the
directory in, a `Report` out (or None for traffic Istio does not count).

Which side reported: an entry whose upstream cluster is `inbound|…` was served by the
proxy's own workload (reporter `destination`); anything else left it (`source`, which is
what gateways report too).  The reporting proxy knows itself (its node metadata); the peer
is found by address in the directory, its identity in the mTLS peer certificate.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from google.protobuf import json_format

from libs.config.directory import UNKNOWN, Directory, Workload

# Label names of Istio's standard metrics, in Istio's order.
LABELS = ("reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app",
          "source_version", "source_cluster", "destination_workload", "destination_workload_namespace",
          "destination_principal", "destination_app", "destination_version", "destination_service",
          "destination_service_name", "destination_service_namespace", "destination_cluster", "request_protocol",
          "response_code", "grpc_response_status", "response_flags", "connection_security_policy")
# Callers Istio's Mixer never counted: health checkers and the Prometheus that scrapes it.
SKIPPED_USER_AGENTS = ("kube-probe", "Prometheus")
# Envoy's short names for ResponseFlags fields (what %RESPONSE_FLAGS% prints).
_FLAGS = {
    "failed_local_healthcheck": "LH", "no_healthy_upstream": "UH", "upstream_request_timeout": "UT",
    "local_reset": "LR", "upstream_remote_reset": "UR", "upstream_connection_failure": "UF",
    "upstream_connection_termination": "UC", "upstream_overflow": "UO", "no_route_found": "NR",
    "delay_injected": "DI", "fault_injected": "FI", "rate_limited": "RL", "rate_limit_service_error": "RLSE",
    "downstream_connection_termination": "DC", "upstream_retry_limit_exceeded": "URX", "stream_idle_timeout": "SI",
    "invalid_envoy_request_headers": "IH", "downstream_protocol_error": "DPE",
    "upstream_max_stream_duration_reached": "UMSDR", "response_from_cache_filter": "RFCF",
    "no_filter_config_found": "NFCF", "duration_timeout": "DT", "upstream_protocol_error": "UPE",
    "no_cluster_found": "NC", "overload_manager": "OM", "dns_resolution_failure": "DF",
    "downstream_remote_reset": "DR",
}
DEFAULT_CLUSTER = "Kubernetes"


@dataclass(frozen=True)
class Reporter:
    """The proxy that sent the entries, as its node metadata describes it."""

    workload: Workload
    address: str
    cluster: str
    trust_domain: str
    # It serves a workload certificate: its own side of mTLS is `principal`.
    identity: bool

    @property
    def principal(self) -> str:
        return self.workload.principal(self.trust_domain) if self.identity else UNKNOWN

    @classmethod
    def from_node(cls, node: base_pb2.Node) -> Reporter:
        metadata: dict[str, Any] = json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
        parts = node.id.split("~")
        pod, _, namespace = parts[2].rpartition(".") if len(parts) == 4 else ("", "", "")
        labels = metadata.get("LABELS") or {}
        workload = Workload(
            name=str(metadata.get("WORKLOAD_NAME") or pod or UNKNOWN),
            namespace=str(metadata.get("NAMESPACE") or namespace or UNKNOWN),
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())) if isinstance(labels, dict) else (),
            service_account=str(metadata.get("SERVICE_ACCOUNT", "")), sidecar=True)
        return cls(workload, parts[1] if len(parts) == 4 else "", str(metadata.get("CLUSTER_ID") or DEFAULT_CLUSTER),
                   str(metadata.get("TRUST_DOMAIN") or "cluster.local"),
                   str(metadata.get("MIZZEN_IDENTITY", "")).lower() == "true")


class Report:
    """One entry's labels and numbers.  A plain slotted class, made once per entry: a frozen
    dataclass's `__init__` took 3.3 us, a quarter of an entry's whole cost.  Not changed
    after it is made."""

    __slots__ = ("closed", "duration_ms", "labels", "opened", "received_bytes", "request", "request_bytes",
                 "response_bytes", "sent_bytes")

    def __init__(self, labels: tuple[str, ...], *, duration_ms: float = 0.0, request_bytes: int = 0,
                 response_bytes: int = 0, opened: bool = False, closed: bool = False, sent_bytes: int = 0,
                 received_bytes: int = 0, request: accesslog_pb2.HTTPRequestProperties | None = None) -> None:
        self.labels = labels  # values, in LABELS order
        # HTTP: one request; TCP: what this entry says about one connection.
        self.duration_ms = duration_ms
        self.request_bytes = request_bytes
        self.response_bytes = response_bytes
        self.opened = opened
        self.closed = closed
        self.sent_bytes = sent_bytes
        self.received_bytes = received_bytes
        # The entry's request, read only when the Telemetry API's tag overrides ask for it.
        self.request = request

    def label_map(self) -> dict[str, str]:
        return dict(zip(LABELS, self.labels, strict=True))

    def request_attributes(self) -> dict[str, str]:
        """What tag overrides may read: request.host, .method and .url_path."""
        request = self.request
        if request is None:
            return {}
        return {"request.host": request.authority, "request.url_path": request.path.split("?", 1)[0],
                "request.method": base_pb2.RequestMethod.Name(request.request_method)
                if request.request_method else ""}


def _ip(address: address_pb2.Address) -> str:
    return address.socket_address.address if address.HasField("socket_address") else ""


def response_flags(flags: accesslog_pb2.ResponseFlags) -> str:
    """Envoy's short names of the flags set, in Envoy's order (only set fields are listed)."""
    set_fields = {descriptor.name for descriptor, value in flags.ListFields() if value}
    if not set_fields:
        return "-"
    short = [code for name, code in _FLAGS.items() if name in set_fields]
    if "unauthorized_details" in set_fields:
        short.append("UAEX")
    return ",".join(short) or "-"


def _peer_principal(common: accesslog_pb2.AccessLogCommon) -> str:
    peer = common.tls_properties.peer_certificate_properties
    uris = [san.uri for san in peer.subject_alt_name if san.uri]
    return uris[0] if uris else UNKNOWN


def _workload_labels(prefix: str, workload: Workload | None, principal: str, cluster: str) -> dict[str, str]:
    if workload is None:
        return {f"{prefix}_workload": UNKNOWN, f"{prefix}_workload_namespace": UNKNOWN,
                f"{prefix}_principal": principal, f"{prefix}_app": UNKNOWN, f"{prefix}_version": UNKNOWN,
                f"{prefix}_cluster": UNKNOWN}
    return {f"{prefix}_workload": workload.name, f"{prefix}_workload_namespace": workload.namespace,
            f"{prefix}_principal": principal, f"{prefix}_app": workload.app, f"{prefix}_version": workload.version,
            f"{prefix}_cluster": cluster}


def _destination_service(common: accesslog_pb2.AccessLogCommon, authority: str, reporter: Reporter,
                         inbound: bool, directory: Directory) -> dict[str, str]:
    """Which service was called.  Client side: the host in the upstream cluster's name.
    Server side: the request's host when it names a service this workload serves, else the
    one service it serves; never a name only the request made up, so a hostile Host header
    cannot mint new series (Istio #19090)."""
    host = UNKNOWN
    cluster = common.upstream_cluster
    if not inbound:
        parts = cluster.split("|")
        host = parts[3] if len(parts) == 4 and parts[0] == "outbound" else (cluster or UNKNOWN)
    else:
        served = directory.services_of(reporter.workload, reporter.address)
        asked = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        wanted = [h for h in served if asked and (h == asked or h.startswith(f"{asked}."))]
        if wanted:
            host = wanted[0]
        elif len(served) == 1:
            host = served[0]
    named = directory.service(host)
    if named is None:
        return {"destination_service": host, "destination_service_name": host,
                "destination_service_namespace": UNKNOWN}
    return {"destination_service": named.host, "destination_service_name": named.name,
            "destination_service_namespace": named.namespace}


# The labels that name who called whom: everything but the protocol, code, status and flags.
_PARTIES = (*LABELS[:LABELS.index("request_protocol")], "connection_security_policy")
_PARTY_CACHE_SIZE = 50_000


def _parties(common: accesslog_pb2.AccessLogCommon, reporter: Reporter, directory: Directory,
             authority: str) -> tuple[str, ...]:
    """Values of `_PARTIES` for one entry, worked out once per (reporter, peer, destination):
    thousands of entries a second share a handful of those."""
    inbound = common.upstream_cluster.startswith("inbound|")
    if inbound:
        peer_ip = _ip(common.downstream_direct_remote_address) or _ip(common.downstream_remote_address)
        sans = common.tls_properties.peer_certificate_properties.subject_alt_name
        principal = next((san.uri for san in sans if san.uri), "") if sans else ""
    else:
        peer_ip, principal = _ip(common.upstream_remote_address), ""
    key = (id(reporter), inbound, peer_ip, principal, common.upstream_cluster, authority if inbound else "")
    cache = directory.cache
    found = cache.get(key)
    if found is not None and found[0] is reporter:
        return found[1]
    values: dict[str, str] = {"reporter": "destination" if inbound else "source"}
    peer = directory.workload_at(peer_ip)
    if inbound:
        mutual = bool(principal)
        values.update(_workload_labels("source", peer, principal or UNKNOWN, DEFAULT_CLUSTER))
        values.update(_workload_labels("destination", reporter.workload,
                                       reporter.principal if mutual else UNKNOWN, reporter.cluster))
        values["connection_security_policy"] = "mutual_tls" if mutual else "none"
    else:
        # With a certificate and a sidecar on the other side, auto-mTLS made it mutual TLS.
        mutual = reporter.identity and peer is not None and peer.sidecar
        values.update(_workload_labels("source", reporter.workload, reporter.principal if mutual else UNKNOWN,
                                       reporter.cluster))
        values.update(_workload_labels("destination", peer, peer.principal(reporter.trust_domain)
                                       if mutual and peer is not None else UNKNOWN, DEFAULT_CLUSTER))
        values["connection_security_policy"] = UNKNOWN
    values.update(_destination_service(common, authority, reporter, inbound, directory))
    # Interned: the same few strings stand in millions of series keys.
    parties = tuple(sys.intern(values[name]) for name in _PARTIES)
    if len(cache) >= _PARTY_CACHE_SIZE:
        cache.clear()
    # The reporter is held with the answer, so a reused id cannot return another's.
    cache[key] = (reporter, parties)
    return parties


def _labels(common: accesslog_pb2.AccessLogCommon, reporter: Reporter, directory: Directory, *, authority: str,
            protocol: str, response_code: str, grpc_status: str) -> tuple[str, ...]:
    parties = _parties(common, reporter, directory, authority)
    # Envoy sets response_flags only when a flag is up.
    flags = response_flags(common.response_flags) if common.HasField("response_flags") else "-"
    # LABELS order: the parties, then protocol, code, status, flags, then the security policy.
    return (*parties[:-1], protocol, response_code, grpc_status, flags, parties[-1])


def _ms(duration: Any) -> float:
    return duration.seconds * 1000 + duration.nanos / 1e6


def http_report(entry: accesslog_pb2.HTTPAccessLogEntry, reporter: Reporter, directory: Directory) -> Report | None:
    request, response, common = entry.request, entry.response, entry.common_properties
    if request.user_agent.startswith(SKIPPED_USER_AGENTS):
        return None
    # The response's content type when it has one (as the two merged would give), else the request's.
    content_type = response.response_headers.get("content-type") or request.request_headers.get("content-type", "")
    grpc = content_type.startswith("application/grpc")
    grpc_status = (response.response_trailers.get("grpc-status") or response.response_headers.get("grpc-status", "")
                   if grpc else "")
    labels = _labels(common, reporter, directory, authority=request.authority,
                        protocol="grpc" if grpc else "http",
                        response_code=str(response.response_code.value) if response.HasField("response_code") else "0",
                        grpc_status=grpc_status)
    return Report(labels, duration_ms=_ms(common.time_to_last_downstream_tx_byte),
                  request_bytes=request.request_headers_bytes + request.request_body_bytes,
                  response_bytes=response.response_headers_bytes + response.response_body_bytes, request=request)


def tcp_report(entry: accesslog_pb2.TCPAccessLogEntry, reporter: Reporter, directory: Directory) -> Report | None:
    """An entry logged when the connection opened counts it opened; one logged when it ended
    counts it closed, with its bytes (periodic entries are not asked for)."""
    common = entry.common_properties
    kind = common.access_log_type
    if kind not in (accesslog_pb2.TcpUpstreamConnected, accesslog_pb2.TcpConnectionEnd):
        return None
    labels = _labels(common, reporter, directory, authority="", protocol="tcp", response_code="0",
                     grpc_status="")
    if kind == accesslog_pb2.TcpUpstreamConnected:
        return Report(labels, opened=True)
    return Report(labels, closed=True, sent_bytes=entry.connection_properties.sent_bytes,
                  received_bytes=entry.connection_properties.received_bytes)
