"""Istio's attribute vocabulary, filled from what Envoy asks and what the directory knows.

A check carries the request, both peers' addresses and the mTLS principals: over gRPC in
ext_authz's CheckRequest, over HTTP as the request's own line and headers plus the ones
pilot has Envoy add (`libs.mixer`'s CHECK_* headers).  A quota (rate-limit descriptors)
carries what pilot asked Envoy to send: the quota, the destination workload, the caller's
address and the headers the quota's dimensions read.  The directory turns addresses and names into workloads (labels,
namespace, service).  An attribute nobody knows is absent, never empty, so Mixer's `|`
defaults work.

`Tracking` records which attributes (and which map keys) an evaluation read: the check
cache keys a decision on exactly those.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import json
from collections.abc import Iterator, Mapping
from typing import Any

from envoy.service.auth.v3 import external_auth_pb2

from libs.config.directory import Directory, Workload
from libs.mixer import (
    CHECK_DESTINATION_HEADER,
    CHECK_HEADER_PREFIX,
    CHECK_LABELS_HEADER,
    CHECK_PRINCIPAL_HEADER,
    CHECK_SCHEME_HEADER,
    CHECK_SIZE_HEADER,
    CHECK_SNI_HEADER,
    CHECK_SOURCE_HEADER,
    CHECK_WORKLOAD_HEADER,
    DESTINATION_KEY,
    DESTINATION_LABELS_KEY,
    HEADERS_KEY,
    SOURCE_ADDRESS_KEY,
)


def _workload(prefix: str, workload: Workload | None, directory: Directory, address: str) -> Mapping[str, Any]:
    """The workload's attributes under `prefix`, computed once per directory snapshot."""
    if workload is None:
        return {}
    key = (_WORKLOAD_ATTRIBUTES, prefix, workload, address)
    cached = directory.cache.get(key)
    if cached is None:
        cached = directory.cache[key] = _workload_attributes(prefix, workload, directory, address)
    return cached


_WORKLOAD_ATTRIBUTES = object()


def _workload_attributes(prefix: str, workload: Workload, directory: Directory, address: str) -> dict[str, Any]:
    found: dict[str, Any] = {
        f"{prefix}.labels": dict(workload.labels), f"{prefix}.name": workload.name,
        f"{prefix}.namespace": workload.namespace, f"{prefix}.workload.name": workload.name,
        f"{prefix}.workload.namespace": workload.namespace,
        f"{prefix}.uid": f"kubernetes://{workload.name}.{workload.namespace}",
    }
    if prefix == "destination":
        hosts = directory.services_of(workload, address)
        if hosts:
            service = directory.service(hosts[0])
            found["destination.service.host"] = hosts[0]
            if service is not None:
                found["destination.service.name"] = service.name
                found["destination.service.namespace"] = service.namespace
    return found


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parsed once per address: the same few peers ask every check, and parsing costs
    more than the rest of a cached check."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _peer(prefix: str, address: str, port: int, principal: str, directory: Directory,
          workload: Workload | None = None) -> dict[str, Any]:
    """The peer's address and identity, and its workload's attributes (`workload`, else the
    one the directory has at its address)."""
    found: dict[str, Any] = {}
    ip = _ip(address)
    if ip is not None:
        found[f"{prefix}.ip"] = ip
    if port:
        found[f"{prefix}.port"] = port
    if principal:
        found[f"{prefix}.principal"] = principal
        found[f"{prefix}.user"] = principal.removeprefix("spiffe://")
    found.update(_workload(prefix, workload or directory.workload_at(address), directory, address))
    return found


def _checked_workload(named: str, labels: str, address: str, port: int, directory: Directory) -> dict[str, Any]:
    """The destination as pilot named it in the check's context (`named`: the workload whose
    proxy asks, `labels` its labels as JSON), else as the directory knows its address."""
    if not named:
        return _peer("destination", address, port, "", directory)
    name, _, namespace = named.rpartition(".")
    workload = directory.workload_named(name, namespace)
    if workload is None:
        workload = Workload(name, namespace, tuple(sorted(json.loads(labels or "{}").items())))
    return _peer("destination", address, port, "", directory, workload)


def _request(headers: dict[str, str], method: str, path: str, host: str, scheme: str, size: int,
             now: datetime.datetime | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "request.headers": headers, "request.method": method, "request.path": path,
        "request.url_path": path.split("?", 1)[0], "request.host": host, "request.scheme": scheme,
        "request.time": now or datetime.datetime.now(datetime.UTC), "request.size": max(size, 0),
        "context.protocol": "grpc" if headers.get("content-type", "").startswith("application/grpc") else "http",
        "context.reporter.kind": "inbound",
    }
    for header, attribute in (("user-agent", "request.useragent"), ("x-request-id", "request.id"),
                              ("referer", "request.referer")):
        if header in headers:
            found[attribute] = headers[header]
    return found


def from_check(request: external_auth_pb2.CheckRequest, directory: Directory,
               now: datetime.datetime | None = None) -> dict[str, Any]:
    """Attributes of a gRPC check (ext_authz's grpc_service)."""
    context = request.attributes
    http = context.request.http
    headers = {key.lower(): value for key, value in http.headers.items()}
    source, destination = context.source, context.destination
    found = {
        **_peer("source", source.address.socket_address.address, source.address.socket_address.port_value,
                source.principal, directory),
        **_checked_workload(context.context_extensions.get(DESTINATION_KEY, ""),
                            context.context_extensions.get(DESTINATION_LABELS_KEY, ""),
                            destination.address.socket_address.address,
                            destination.address.socket_address.port_value, directory),
        **_request(headers, http.method, http.path, http.host or headers.get(":authority", ""), http.scheme,
                   int(http.size), now),
        "connection.mtls": bool(source.principal),
    }
    if context.tls_session.sni:
        found["connection.requested_server_name"] = context.tls_session.sni
    return found


def _host_port(text: str) -> tuple[str, int]:
    """`ip:port` or `[ip6]:port` as Envoy formats an address; ("", 0) if it is neither."""
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        return "", 0
    return host.removeprefix("[").removesuffix("]"), int(port)


def from_http_check(method: str, path: str, headers: dict[str, str], directory: Directory,
                    now: datetime.datetime | None = None) -> dict[str, Any]:
    """Attributes of an HTTP check (ext_authz's http_service): the request's method, path
    and headers (lower-case names), with the `x-mizzen-check-*` headers pilot had Envoy add
    in place of the gRPC check's peers, TLS and context.  `request.headers` holds what the
    gRPC check's would: the client's headers and the pseudo-headers, not the additions."""
    context = {name: headers.pop(name) for name in [n for n in headers if n.startswith(CHECK_HEADER_PREFIX)]}
    host = headers.pop("host", "")
    headers.update({":authority": host, ":path": path, ":method": method})
    size = context.get(CHECK_SIZE_HEADER, "")
    if size.isdigit():
        headers["content-length"] = size
    else:
        headers.pop("content-length", None)
    principal = context.get(CHECK_PRINCIPAL_HEADER, "")
    found = {
        **_peer("source", *_host_port(context.get(CHECK_SOURCE_HEADER, "")), principal, directory),
        **_checked_workload(context.get(CHECK_WORKLOAD_HEADER, ""), context.get(CHECK_LABELS_HEADER, ""),
                            *_host_port(context.get(CHECK_DESTINATION_HEADER, "")), directory),
        **_request(headers, method, path, host, context.get(CHECK_SCHEME_HEADER) or "http",
                   int(size) if size.isdigit() else 0, now),
        "connection.mtls": bool(principal),
    }
    if context.get(CHECK_SNI_HEADER):
        found["connection.requested_server_name"] = context[CHECK_SNI_HEADER]
    return found


PSEUDO_HEADERS = {":path": "request.path", ":method": "request.method", ":authority": "request.host"}


def from_descriptor(entries: Mapping[str, str], directory: Directory) -> dict[str, Any]:
    """Attributes from one rate-limit descriptor's entries."""
    found: dict[str, Any] = {"request.headers": {}, "request.time": datetime.datetime.now(datetime.UTC),
                             "context.protocol": "http"}
    for key, value in entries.items():
        if key == SOURCE_ADDRESS_KEY:
            ip = _ip(value)
            if ip is not None:
                found["source.ip"] = ip
            found.update(_workload("source", directory.workload_at(value), directory, value))
        elif key == DESTINATION_KEY:
            workload = directory.workload_named(*value.rsplit(".", 1))
            found.update(_workload("destination", workload, directory, ""))
        elif key in PSEUDO_HEADERS:
            found[PSEUDO_HEADERS[key]] = value
            if key == ":path":
                found["request.url_path"] = value.split("?", 1)[0]
        elif key.startswith(f"{HEADERS_KEY}[") and key.endswith("]"):
            found["request.headers"][key[len(HEADERS_KEY) + 1:-1].lower()] = value
    return found


class TrackedMap(Mapping[str, str]):
    """A map attribute that notes each key looked up (present or not)."""

    def __init__(self, name: str, values: Mapping[str, str], read: set[tuple[str, str | None]]) -> None:
        self._name, self._values, self._read = name, values, read

    def __getitem__(self, key: str) -> str:
        self._read.add((self._name, key))
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        self._read.add((self._name, str(key)))
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        self._read.add((self._name, None))  # a whole-map read (size(), iteration)
        return iter(self._values)

    def __len__(self) -> int:
        self._read.add((self._name, None))
        return len(self._values)


class Tracking(Mapping[str, Any]):
    """The attributes, noting every one an evaluation reads: (name, None) for a whole
    attribute, (name, key) for one key of a map attribute."""

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.attributes = attributes
        self.read: set[tuple[str, str | None]] = set()

    def __getitem__(self, name: str) -> Any:
        if name not in self.attributes:
            # Absent is an answer too: a decision made without it must not serve a request with it.
            self.read.add((name, None))
            raise KeyError(name)
        value = self.attributes[name]
        if isinstance(value, Mapping):
            return TrackedMap(name, value, self.read)
        self.read.add((name, None))
        return value

    def __contains__(self, name: object) -> bool:
        present = name in self.attributes
        if not present or not isinstance(self.attributes[str(name)], Mapping):
            self.read.add((str(name), None))
        return present

    def __iter__(self) -> Iterator[str]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)


_ABSENT_MAP = ("absent map",)


def signature_values(attributes: Mapping[str, Any], read: frozenset[tuple[str, str | None]]) -> tuple[Any, ...]:
    """The values `read` names, in a hashable form; absent ones as None (a key of an absent
    map apart from a key absent from a present map: expressions read those differently)."""
    values: list[Any] = []
    for name, key in sorted(read, key=lambda item: (item[0], item[1] or "")):
        value = attributes.get(name)
        if key is not None:
            values.append(value.get(key) if isinstance(value, Mapping) else _ABSENT_MAP)
        elif isinstance(value, Mapping):
            values.append(tuple(sorted(value.items())))
        else:
            values.append(value)
    return tuple(values)
