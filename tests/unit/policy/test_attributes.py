"""Istio's attributes as the policy service fills them, pure: from an ext_authz CheckRequest
and the directory (workloads, WorkloadEntries, ServiceEntries), from the entries of a
rate-limit descriptor, and what `Tracking` notes an evaluation read."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

import pytest
from envoy.service.auth.v3 import external_auth_pb2

from libs.cexl import evaluate
from libs.config import parse_text
from libs.config.directory import Directory, build
from libs.config.workloads import WorkloadRegistration
from services.policy.attributes import Tracking, from_check, from_descriptor, from_http_check

NOW = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
PRINCIPAL = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
CONFIG = """\
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage-v1, namespace: default}
spec: {address: 10.0.0.2, labels: {app: productpage, version: v1}, serviceAccount: bookinfo-productpage}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.3}]
"""


def directory() -> Directory:
    result = parse_text(CONFIG, "test")
    assert result.errors() == []
    return build([WorkloadRegistration("reviews-v1", "default", "10.0.0.1", {"app": "reviews", "version": "v1"},
                                       "bookinfo-reviews"),
                  WorkloadRegistration("legacy-vm", "default", "10.0.0.3", {"app": "legacy"})],
                 [resource for _, resource in result.resources])


def check_request(*, source: str = "10.0.0.2", destination: str = "10.0.0.1", principal: str = PRINCIPAL,
                  headers: dict[str, str] | None = None, sni: str = "") -> external_auth_pb2.CheckRequest:
    request = external_auth_pb2.CheckRequest()
    context = request.attributes
    context.source.address.socket_address.address = source
    context.source.address.socket_address.port_value = 43210
    context.source.principal = principal
    context.destination.address.socket_address.address = destination
    context.destination.address.socket_address.port_value = 9080
    http = context.request.http
    http.method, http.path, http.host, http.scheme, http.size = "GET", "/reviews/1?page=2", "reviews:9080", "http", 12
    http.headers.update(headers if headers is not None else {
        "User-Agent": "curl/8", "x-request-id": "r-1", "X-User": "jason", "content-type": "text/plain"})
    context.tls_session.sni = sni
    return request


# --- from_check ------------------------------------------------------------------------------


def test_peers_addresses_ports_and_principal() -> None:
    found = from_check(check_request(), directory(), NOW)
    assert found["source.ip"] == ipaddress.IPv4Address("10.0.0.2")
    assert found["destination.ip"] == ipaddress.IPv4Address("10.0.0.1")
    assert (found["source.port"], found["destination.port"]) == (43210, 9080)
    assert found["source.principal"] == PRINCIPAL
    assert found["source.user"] == "cluster.local/ns/default/sa/bookinfo-productpage"
    assert found["connection.mtls"] is True


def test_workloads_from_registrations_and_workload_entries() -> None:
    found = from_check(check_request(), directory(), NOW)
    assert found["source.labels"] == {"app": "productpage", "version": "v1"}
    assert (found["source.name"], found["source.namespace"]) == ("productpage-v1", "default")
    assert found["source.workload.name"] == "productpage-v1"
    assert found["destination.labels"] == {"app": "reviews", "version": "v1"}
    assert (found["destination.workload.name"], found["destination.workload.namespace"]) == ("reviews-v1", "default")
    assert found["destination.uid"] == "kubernetes://reviews-v1.default"


def test_the_destination_pilot_names_in_the_context_wins_over_the_address() -> None:
    request = check_request(destination="10.9.9.9")  # an address the directory does not know
    request.attributes.context_extensions.update({"destination.workload": "ratings-v2.prod",
                                                  "destination.labels": '{"app": "ratings", "version": "v2"}'})
    found = from_check(request, directory(), NOW)
    assert found["destination.labels"] == {"app": "ratings", "version": "v2"}
    assert (found["destination.workload.name"], found["destination.namespace"]) == ("ratings-v2", "prod")
    assert found["destination.ip"] == ipaddress.IPv4Address("10.9.9.9")
    # A workload the directory knows by name keeps what the directory says of it.
    request.attributes.context_extensions["destination.workload"] = "reviews-v1.default"
    found = from_check(request, directory(), NOW)
    assert found["destination.service.host"] == "reviews.default.svc.cluster.local"


def test_the_destination_service_from_a_selecting_service_entry() -> None:
    found = from_check(check_request(), directory(), NOW)
    assert found["destination.service.host"] == "reviews.default.svc.cluster.local"
    assert (found["destination.service.name"], found["destination.service.namespace"]) == ("reviews", "default")
    # Only the destination gets a service.
    assert "source.service.host" not in found


def test_the_destination_service_from_a_service_entry_endpoint_is_named_by_its_host() -> None:
    found = from_check(check_request(destination="10.0.0.3"), directory(), NOW)
    assert found["destination.service.host"] == "legacy.example.com"
    assert (found["destination.service.name"], found["destination.service.namespace"]) == (
        "legacy.example.com", "default")


def test_request_attributes() -> None:
    found = from_check(check_request(), directory(), NOW)
    assert found["request.headers"] == {"user-agent": "curl/8", "x-request-id": "r-1", "x-user": "jason",
                                        "content-type": "text/plain"}
    assert (found["request.method"], found["request.path"], found["request.url_path"]) == (
        "GET", "/reviews/1?page=2", "/reviews/1")
    assert (found["request.host"], found["request.scheme"], found["request.size"]) == ("reviews:9080", "http", 12)
    assert (found["request.useragent"], found["request.id"]) == ("curl/8", "r-1")
    assert found["request.time"] == NOW
    assert (found["context.protocol"], found["context.reporter.kind"]) == ("http", "inbound")


@pytest.mark.parametrize("content_type", ["application/grpc", "application/grpc+proto"])
def test_grpc_is_told_by_its_content_type(content_type: str) -> None:
    found = from_check(check_request(headers={"content-type": content_type}), directory(), NOW)
    assert found["context.protocol"] == "grpc"


def test_the_requested_server_name_when_tls_carried_one() -> None:
    found = from_check(check_request(sni="outbound_.9080_._.reviews.default.svc.cluster.local"), directory(), NOW)
    assert found["connection.requested_server_name"] == "outbound_.9080_._.reviews.default.svc.cluster.local"


def test_what_nobody_knows_stays_absent() -> None:
    found = from_check(check_request(source="10.9.9.9", principal="", headers={}), directory(), NOW)
    absent = {"source.labels", "source.namespace", "source.workload.name", "source.principal", "source.user",
              "request.useragent", "request.id", "request.referer", "connection.requested_server_name"}
    assert absent.isdisjoint(found)
    assert found["connection.mtls"] is False
    # So Mixer's `|` defaults work.
    assert evaluate('source.labels["app"] | "unknown"', found) == "unknown"


def test_an_address_that_is_no_ip_gives_no_ip_attribute() -> None:
    found = from_check(check_request(source="envoy-internal"), directory(), NOW)
    assert "source.ip" not in found and found["source.port"] == 43210


# --- from_descriptor -------------------------------------------------------------------------

DESCRIPTOR = {"quota": "requestcount", "charge": "1", "destination.workload": "reviews-v1.default",
              "remote_address": "10.0.0.2", "request.headers[X-User]": "jason", ":path": "/reviews/1?page=2",
              ":method": "POST", ":authority": "reviews:9080"}


def test_a_descriptor_names_both_workloads() -> None:
    found = from_descriptor(DESCRIPTOR, directory())
    assert found["source.ip"] == ipaddress.IPv4Address("10.0.0.2")
    assert found["source.labels"] == {"app": "productpage", "version": "v1"}
    assert found["destination.labels"] == {"app": "reviews", "version": "v1"}
    assert found["destination.namespace"] == "default"
    assert found["destination.service.host"] == "reviews.default.svc.cluster.local"


def test_a_descriptor_carries_headers_and_pseudo_headers() -> None:
    found = from_descriptor(DESCRIPTOR, directory())
    assert found["request.headers"] == {"x-user": "jason"}
    assert (found["request.path"], found["request.url_path"]) == ("/reviews/1?page=2", "/reviews/1")
    assert (found["request.method"], found["request.host"]) == ("POST", "reviews:9080")
    assert found["context.protocol"] == "http"


def test_a_descriptor_for_unknown_workloads_leaves_them_absent() -> None:
    found = from_descriptor({"destination.workload": "gone.default", "remote_address": "10.9.9.9"}, directory())
    assert found["source.ip"] == ipaddress.IPv4Address("10.9.9.9")
    assert {"source.labels", "destination.labels", "destination.namespace"}.isdisjoint(found)
    assert found["request.headers"] == {}


# --- Tracking --------------------------------------------------------------------------------


def tracking() -> Tracking:
    return Tracking({"source.ip": ipaddress.IPv4Address("10.0.0.2"), "request.headers": {"x-user": "jason"},
                     "destination.labels": {"app": "reviews"}})


def test_reading_an_attribute_records_it_whole() -> None:
    reads = tracking()
    assert reads["source.ip"] == ipaddress.IPv4Address("10.0.0.2")
    assert reads.read == {("source.ip", None)}


def test_reading_a_key_of_a_map_records_only_that_key() -> None:
    reads = tracking()
    headers = reads["request.headers"]
    assert headers["x-user"] == "jason"
    assert headers.get("x-missing") is None
    assert "x-other" not in headers
    assert reads.read == {("request.headers", "x-user"), ("request.headers", "x-missing"),
                          ("request.headers", "x-other")}


def test_iterating_a_map_records_a_whole_map_read() -> None:
    reads = tracking()
    assert list(reads["destination.labels"]) == ["app"]
    assert len(reads["request.headers"]) == 1
    assert reads.read == {("destination.labels", None), ("request.headers", None)}


def test_asking_for_an_absent_attribute_records_it() -> None:
    reads = tracking()
    assert "source.labels" not in reads
    assert reads.read == {("source.labels", None)}


def test_an_evaluation_records_exactly_what_it_read() -> None:
    reads = tracking()
    assert evaluate('request.headers["x-user"] == "jason" && (source.labels["app"] | "none") == "none"', reads)
    assert reads.read == {("request.headers", "x-user"), ("source.labels", None)}


def test_an_evaluation_that_short_circuits_records_less() -> None:
    reads = tracking()
    assert not evaluate('destination.labels["app"] == "ratings" && request.headers["x-user"] == "jason"', reads)
    assert reads.read == {("destination.labels", "app")}


def test_getting_an_absent_attribute_records_it() -> None:
    reads = tracking()
    assert reads.get("destination.namespace") is None
    assert reads.read == {("destination.namespace", None)}


def test_tracking_is_a_read_only_view_of_the_attributes() -> None:
    attributes: dict[str, Any] = {"source.ip": "10.0.0.2"}
    reads = Tracking(attributes)
    assert (len(reads), list(reads)) == (1, ["source.ip"])
    assert reads.read == set()


# --- from_http_check -------------------------------------------------------------------------


def http_check_of(request: external_auth_pb2.CheckRequest) -> tuple[str, str, dict[str, str]]:
    """The HTTP check Envoy sends for the same request: its method, path and headers, with
    the x-mizzen-check-* headers pilot has Envoy add filled as Envoy fills them."""
    context = request.attributes
    http = context.request.http
    source, destination = context.source.address.socket_address, context.destination.address.socket_address
    headers = {name.lower(): value for name, value in http.headers.items()}
    headers.update({"host": http.host, "content-length": "0",
                    "x-mizzen-check-source": f"{source.address}:{source.port_value}",
                    "x-mizzen-check-principal": context.source.principal,
                    "x-mizzen-check-destination": f"{destination.address}:{destination.port_value}",
                    "x-mizzen-check-scheme": http.scheme, "x-mizzen-check-size": str(http.size),
                    "x-mizzen-check-sni": context.tls_session.sni})
    for key, header in (("destination.workload", "x-mizzen-check-workload"),
                        ("destination.labels", "x-mizzen-check-labels")):
        if key in context.context_extensions:
            headers[header] = context.context_extensions[key]
    # Envoy adds no header whose value formats empty.
    return http.method, http.path, {name: value for name, value in headers.items() if value}


@pytest.mark.parametrize("principal", [PRINCIPAL, ""])
@pytest.mark.parametrize("named", [False, True])
def test_an_http_check_has_the_attributes_of_the_same_grpc_check(principal: str, named: bool) -> None:
    request = check_request(principal=principal, sni="outbound_.9080_._.reviews.default.svc.cluster.local")
    if named:
        request.attributes.context_extensions.update({"destination.workload": "ratings-v2.prod",
                                                      "destination.labels": '{"app": "ratings", "version": "v2"}'})
    over_grpc = from_check(request, directory(), NOW)
    over_grpc["request.headers"] = {**over_grpc["request.headers"], ":authority": "reviews:9080",
                                    ":path": "/reviews/1?page=2", ":method": "GET", "content-length": "12"}
    method, path, headers = http_check_of(request)
    assert from_http_check(method, path, headers, directory(), NOW) == over_grpc


def test_an_http_check_without_envoys_headers_knows_only_the_request() -> None:
    found = from_http_check("POST", "/ratings/0", {"host": "ratings:9080", "content-length": "0"}, directory(), NOW)
    assert not any(name.startswith(("source.", "destination.")) for name in found)
    assert found["connection.mtls"] is False
    assert (found["request.method"], found["request.host"], found["request.scheme"]) == ("POST", "ratings:9080", "http")
    assert found["request.headers"] == {":authority": "ratings:9080", ":path": "/ratings/0", ":method": "POST"}
