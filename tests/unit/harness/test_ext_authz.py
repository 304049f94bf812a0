"""The test ext_authz servers: over gRPC (a real AuthorizationStub) and over HTTP (httpx), the
default rule allows `x-ext-authz: allow` and denies the rest the way Envoy expects, every
check is recorded, and the rule can be swapped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2

from tests.harness.ext_authz import DENIED_BODY, RESULT_HEADER, Check, ExtAuthzServer, HttpExtAuthzServer
from tests.harness.http import HTTP


@pytest.fixture
def grpc_authz() -> Iterator[tuple[ExtAuthzServer, Any]]:
    with ExtAuthzServer() as server, grpc.insecure_channel(server.address) as channel:
        yield server, external_auth_pb2_grpc.AuthorizationStub(channel)


def check_request(path: str, method: str, headers: dict[str, str]) -> Any:
    Context = attribute_context_pb2.AttributeContext
    http = Context.HttpRequest(path=path, method=method, headers=headers)
    return external_auth_pb2.CheckRequest(attributes=Context(request=Context.Request(http=http)))


def result_headers(options: Any) -> dict[str, str]:
    return {o.header.key: o.header.value for o in options}


def test_grpc_allows_the_allow_header_and_tells_the_upstream(grpc_authz: tuple[ExtAuthzServer, Any]) -> None:
    server, stub = grpc_authz
    response = stub.Check(check_request("/ok?x=1", "GET", {":authority": "web", "x-ext-authz": "allow"}), timeout=5)
    assert response.status.code == code_pb2.OK
    assert response.WhichOneof("http_response") == "ok_response"
    assert result_headers(response.ok_response.headers) == {RESULT_HEADER: "allowed"}
    assert server.checks == [Check("/ok?x=1", "GET", {":authority": "web", "x-ext-authz": "allow"})]


def test_grpc_denies_anything_else_with_403(grpc_authz: tuple[ExtAuthzServer, Any]) -> None:
    server, stub = grpc_authz
    response = stub.Check(check_request("/no", "POST", {"x-ext-authz": "deny"}), timeout=5)
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.WhichOneof("http_response") == "denied_response"
    assert response.denied_response.status.code == 403
    assert response.denied_response.body == DENIED_BODY
    assert result_headers(response.denied_response.headers) == {RESULT_HEADER: "denied"}
    assert [(c.path, c.method) for c in server.checks] == [("/no", "POST")]
    server.clear()
    assert server.checks == []


def test_grpc_reads_raw_header_map(grpc_authz: tuple[ExtAuthzServer, Any]) -> None:
    server, stub = grpc_authz
    request = check_request("/raw", "GET", {})
    for key, value in (("x-ext-authz", b"allow"), ("x-multi", b"a"), ("x-multi", b"b")):
        request.attributes.request.http.header_map.headers.add(key=key, raw_value=value)
    assert stub.Check(request, timeout=5).status.code == code_pb2.OK
    assert server.checks[0].headers == {"x-ext-authz": "allow", "x-multi": "a,b"}


def test_grpc_rule_can_be_swapped_and_restored(grpc_authz: tuple[ExtAuthzServer, Any]) -> None:
    server, stub = grpc_authz
    server.set_rule(lambda check: check.path.startswith("/public"))
    assert stub.Check(check_request("/public/a", "GET", {}), timeout=5).status.code == code_pb2.OK
    assert stub.Check(check_request("/private", "GET", {"x-ext-authz": "allow"}),
                      timeout=5).status.code == code_pb2.PERMISSION_DENIED
    server.set_rule(None)
    assert stub.Check(check_request("/public/a", "GET", {}), timeout=5).status.code == code_pb2.PERMISSION_DENIED
    assert len(server.checks) == 3


def test_http_allows_denies_and_records_without_the_prefix() -> None:
    with HttpExtAuthzServer(path_prefix="/check") as server:
        base = f"http://{server.address}/check"
        allowed = HTTP.get(f"{base}/ok?x=1", headers={"x-ext-authz": "allow"}, timeout=5)
        assert allowed.status_code == 200
        assert allowed.headers[RESULT_HEADER] == "allowed"
        assert allowed.content == b""

        denied = HTTP.post(f"{base}/no", headers={"x-ext-authz": "deny"}, content=b"payload", timeout=5)
        assert denied.status_code == 403
        assert denied.headers[RESULT_HEADER] == "denied"
        assert denied.text == DENIED_BODY

        assert HTTP.head(f"{base}/head", timeout=5).status_code == 403

        checks = server.checks
        assert [(c.path, c.method) for c in checks] == [("/ok?x=1", "GET"), ("/no", "POST"), ("/head", "HEAD")]
        assert checks[0].headers["x-ext-authz"] == "allow"
        assert checks[1].headers["content-length"] == "7"

        server.set_rule(lambda check: True)
        assert HTTP.delete(f"{base}/any", timeout=5).status_code == 200
