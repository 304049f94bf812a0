"""External authorizers for tests of Envoy's ext_authz filter (Istio CUSTOM AuthorizationPolicy):
one speaking gRPC `envoy.service.auth.v3.Authorization/Check` (Istio's `envoyExtAuthzGrpc`
provider), one plain HTTP (`envoyExtAuthzHttp`), both deciding by the same rule.

The default rule is Istio's sample authorizer's: allow when the request carries
`x-ext-authz: allow`, deny otherwise with 403, body `denied by ext_authz` and
`x-ext-authz-check-result: denied`; an allowed request reaches the upstream with
`x-ext-authz-check-result: allowed`.  Tests may swap the rule at any time with `set_rule`.

Every check is recorded as a `Check(path, method, headers)` before it is answered, so once a
client has Envoy's response the check (or its absence) is already visible in `checks`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from samples.echo import HttpServer

DECISION_HEADER = "x-ext-authz"
RESULT_HEADER = "x-ext-authz-check-result"
DENIED_BODY = "denied by ext_authz"


class Check(NamedTuple):
    """One request the authorizer was asked about; header names are lower case."""

    path: str
    method: str
    headers: dict[str, str]


Rule = Callable[[Check], bool]


def allow_header(check: Check) -> bool:
    """The default rule: allow exactly when `x-ext-authz: allow` was sent."""
    return check.headers.get(DECISION_HEADER) == "allow"


class _Authorizer:
    """The rule and the record shared by both transports; safe to use from any thread."""

    def __init__(self, rule: Rule | None) -> None:
        self._lock = threading.Lock()
        self._rule: Rule = rule or allow_header
        self._checks: list[Check] = []

    @property
    def checks(self) -> list[Check]:
        with self._lock:
            return list(self._checks)

    def clear(self) -> None:
        with self._lock:
            self._checks.clear()

    def set_rule(self, rule: Rule | None) -> None:
        """Decide later checks by `rule`; None restores `allow_header`."""
        with self._lock:
            self._rule = rule or allow_header

    def _decide(self, check: Check) -> bool:
        with self._lock:
            self._checks.append(check)
            rule = self._rule
        # Outside the lock, so a rule may itself look at `checks` or call `set_rule`.
        return rule(check)


def _header(key: str, value: str) -> Any:
    # Overwrite rather than Envoy's default append: the upstream must see the authorizer's verdict
    # alone, even if the client sent a header of the same name.
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names, repeated values joined with "," as Envoy does for CheckRequest headers."""
    headers: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _request_headers(http: Any) -> dict[str, str]:
    if http.headers:
        return dict(http.headers)
    # With `encode_raw_headers` Envoy fills `header_map` instead: one entry per value, as bytes.
    return _joined((e.key, e.raw_value.decode() if e.raw_value else e.value) for e in http.header_map.headers)


class _Servicer(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self, owner: _Authorizer) -> None:
        self._owner = owner

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        http = request.attributes.request.http
        if self._owner._decide(Check(http.path, http.method, _request_headers(http))):
            return external_auth_pb2.CheckResponse(
                status=status_pb2.Status(code=code_pb2.OK),
                ok_response=external_auth_pb2.OkHttpResponse(headers=[_header(RESULT_HEADER, "allowed")]),
            )
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=http_status_pb2.Forbidden),
                headers=[_header(RESULT_HEADER, "denied")],
                body=DENIED_BODY,
            ),
        )


class ExtAuthzServer(_Authorizer):
    """`with ExtAuthzServer() as authz: authz.port`: the gRPC authorizer, plaintext (Envoy's cluster
    for it must speak HTTP/2)."""

    def __init__(self, host: str = "127.0.0.1", *, rule: Rule | None = None) -> None:
        super().__init__(rule)
        self.host = host
        # Kept so stop() can end the workers too: grpc does not own an executor it is handed.
        self._executor = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="ext-authz-grpc")
        self._server = grpc.server(self._executor)
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(_Servicer(self), self._server)
        self._port = self._server.add_insecure_port(f"{host}:0")

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> ExtAuthzServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait()
        self._executor.shutdown(wait=False)

    def __enter__(self) -> ExtAuthzServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpExtAuthzServer(_Authorizer):
    """`with HttpExtAuthzServer(path_prefix="/check") as authz: authz.port`: the HTTP authorizer.

    Envoy sends it the client's method and path, the path behind the provider's `pathPrefix`
    (give the same `path_prefix` here and it is removed, so recorded paths read as the client's),
    and only the headers the provider lets through (`includeRequestHeadersInCheck` must name
    `x-ext-authz`).  A 200 allows; anything else, with its headers and body, goes to the client.
    """

    def __init__(self, host: str = "127.0.0.1", *, path_prefix: str = "", rule: Rule | None = None) -> None:
        super().__init__(rule)
        self.path_prefix = path_prefix
        self._server = HttpServer((host, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"ext-authz-http-{self.port}",
                                        daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            # Left at HTTP/1.0, so every answer ends its connection: a kept-alive one would outlive
            # stop() and keep authorizing for an Envoy a test means to cut off.
            def _check(self) -> None:
                # Drain any forwarded body (`withRequestBody`): closing on unread bytes resets the
                # connection, which can lose the answer.
                self.rfile.read(int(self.headers.get("content-length") or 0))
                path = self.path
                if owner.path_prefix and path.startswith(owner.path_prefix):
                    path = path[len(owner.path_prefix):] or "/"
                if owner._decide(Check(path, self.command, _joined(self.headers.items()))):
                    status, verdict, body = 200, "allowed", b""
                else:
                    status, verdict, body = 403, "denied", DENIED_BODY.encode()
                self.send_response(status)
                self.send_header(RESULT_HEADER, verdict)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _check

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> HttpExtAuthzServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, forever if it never ran
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpExtAuthzServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
