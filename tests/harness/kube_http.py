"""The fake API server's HTTP handler: authentication, content negotiation, Status errors,
discovery and OpenAPI, chunked watch streams; the REST verbs themselves are kube_rest's.

Content negotiation as kubectl exercises it: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`
gets a Table (lists, gets and watches, where a watch sends column definitions with its first
event only), the aggregated-discovery media type gets an APIGroupDiscoveryList, the OpenAPI v2
protobuf type gets protobuf; request bodies are JSON, or YAML for `application/apply-patch+yaml`.
"""

from __future__ import annotations

import contextlib
import json
import queue
import select
import socket
import ssl
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.harness import kube_rest
from tests.harness.kube_discovery import (
    OPENAPI_V2_PROTOBUF,
    OPENAPI_V2_PROTOBUF_SERVED,
    OPENAPI_V3_INDEX,
    aggregated_discovery,
    api_group_list,
    api_resource_list,
    openapi_v2,
    token_review,
    version_info,
)
from tests.harness.kube_patch import APPLY_PATCH
from tests.harness.kube_rest import Call
from tests.harness.kube_store import ABORT, StoreError, Watcher, status
from tests.harness.kube_tables import TABLE_VERSIONS

if TYPE_CHECKING:
    from tests.harness.kube_apiserver import FakeKubeApiServer

DEFAULT_WATCH_TIMEOUT_S = 1800
TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


def cut(connection: socket.socket) -> None:
    """Shut a connection down under a thread still using it (for TLS too: the plain socket's
    shutdown, leaving the TLS object to the thread that owns it)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(connection, socket.SHUT_RDWR)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str = ""
    accept: str = ""
    user_agent: str = ""


MediaType = tuple[str, dict[str, str]]


def media_types(header: str) -> list[MediaType]:
    """`Accept: a/b;k=v, c/d` as [("a/b", {"k": "v"}), ("c/d", {})], in the client's order."""
    found = []
    for clause in header.split(","):
        base, *params = (part.strip() for part in clause.split(";"))
        if base:
            found.append((base.lower(), dict(p.split("=", 1) for p in params if "=" in p)))
    return found


def _converted(header: str, group: str, kinds: tuple[str, ...], versions: tuple[str, ...]) -> str | None:
    """The `group/version` of the first acceptable conversion the client asks for (`as=<kind>`),
    or None if it takes plain JSON first (or offers nothing the fake serves)."""
    for base, params in media_types(header):
        if base not in ("application/json", "application/*", "*/*"):
            continue
        if "as" not in params:
            return None
        if params["as"] in kinds and params.get("g") == group and params.get("v") in versions:
            return f"{group}/{params['v']}"
    return None


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive connections and chunked watch streams, as the real server uses.
    protocol_version = "HTTP/1.1"
    server: Any

    def setup(self) -> None:
        super().setup()
        # As Go's net/http does: without it, a response written as headers then body meets the
        # client's delayed ACK (Nagle) and every request takes 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # a failed handshake is an OSError: the client's problem

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded on the fake (`requests`), not printed."""

    @property
    def fake(self) -> FakeKubeApiServer:
        fake: FakeKubeApiServer = self.server.fake
        return fake

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, code: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, code: int, body: Any, content_type: str = "application/json") -> None:
        self._send(code, json.dumps(body).encode(), content_type)

    def _fail(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        self._send_json(code, status(code, reason, message, details))

    def _dispatch(self, method: str) -> None:
        # Read the body first, whatever the answer: unread bytes would corrupt the next
        # request on this keep-alive connection.
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"  # the client asks discovery for "/apis/"
        query = dict(parse_qsl(parts.query))
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        self.fake.record(Request(method, path, query, content_type if raw else "", self.headers.get("Accept") or "",
                                 self.headers.get("User-Agent") or ""))
        if self.headers.get("Authorization") != f"Bearer {self.fake.token}":
            self._fail(401, "Unauthorized", "Unauthorized")
            return
        failure = self.fake.take_failure(path)
        if failure is not None:
            self._fail(*failure, "injected by the test (fail_next)")
            return
        try:
            body = (yaml.safe_load(raw) if content_type == APPLY_PATCH else json.loads(raw)) if raw else None
            if not self._discovery(method, path, body):
                self._resource(method, path, query, body, content_type)
        except StoreError as exc:
            self._fail(exc.code, exc.reason, exc.message, exc.details)
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            self._fail(400, "BadRequest", f"bad request: {exc}")

    # -- discovery, OpenAPI and TokenReview --------------------------------------------------------

    def _discovery(self, method: str, path: str, body: Any) -> bool:
        if method == "POST" and path == TOKENREVIEW_PATH:
            self._send_json(201, token_review(self.fake.tokens, body))
            return True
        if method != "GET":
            return False
        types = self.fake.store.types.values()
        accept = self.headers.get("Accept") or ""
        aggregated = _converted(accept, "apidiscovery.k8s.io", ("APIGroupDiscoveryList",), ("v2", "v2beta1"))
        segments = [s for s in path.split("/") if s]
        if path == "/version":
            self._send_json(200, version_info(self.fake.version))
        elif path in ("/api", "/apis") and aggregated is not None:
            version = aggregated.rpartition("/")[2]
            self._send_json(200, aggregated_discovery(types, core=path == "/api", version=version),
                            f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
        elif path == "/api":
            address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.fake.host}:{self.fake.port}"}
            self._send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [address]})
        elif path == "/apis":
            self._send_json(200, api_group_list(types))
        elif segments[:1] == ["apis"] and len(segments) == 2:
            group = next((g for g in api_group_list(types)["groups"] if g["name"] == segments[1]), None)
            if group is None:
                raise kube_rest.not_found()
            self._send_json(200, {"kind": "APIGroup", "apiVersion": "v1", **group})
        elif (segments[:1] == ["api"] and len(segments) == 2) or (segments[:1] == ["apis"] and len(segments) == 3):
            group, version = ("", segments[1]) if segments[0] == "api" else (segments[1], segments[2])
            resources = api_resource_list(types, group, version)
            if resources is None:
                raise kube_rest.not_found()
            self._send_json(200, resources)
        elif path == "/openapi/v2":
            protobuf = any(base in (OPENAPI_V2_PROTOBUF, OPENAPI_V2_PROTOBUF_SERVED) for base, _ in media_types(accept))
            self._send(200, openapi_v2(self.fake.version, protobuf=protobuf),
                       OPENAPI_V2_PROTOBUF_SERVED if protobuf else "application/json")
        elif path == "/openapi/v3":
            self._send_json(200, OPENAPI_V3_INDEX)
        else:
            return False
        return True

    # -- resources ---------------------------------------------------------------------------------

    def _resource(self, method: str, path: str, query: dict[str, str], body: Any, content_type: str) -> None:
        route = kube_rest.route(self.fake.store, path)
        table = _converted(self.headers.get("Accept") or "", "meta.k8s.io", ("Table",),
                           tuple(v.rpartition("/")[2] for v in TABLE_VERSIONS)) if method == "GET" else None
        call = Call(method, route, query, body, content_type, table)
        if method == "GET" and route.name is None and query.get("watch") in ("true", "1"):
            self._watch(call, kube_rest.watcher(call))
            return
        code, answer = kube_rest.answer(self.fake.store, call)
        self._send_json(code, answer)

    # -- watch ---------------------------------------------------------------------------------------

    def _watch(self, call: Call, watcher: Watcher) -> None:
        query = call.query
        raw_rv = query.get("resourceVersion")
        # Unset or "0": start with synthetic ADDED events for every current object.
        resource_version = int(raw_rv) if raw_rv not in (None, "", "0") else None
        timeout_s = int(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT_S)
        # Like the real server, answer 200 at once and report problems (410) inside the stream.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        abrupt = True
        store = self.fake.store
        if store.wait_released():
            store.start_watch(watcher, resource_version)
            try:
                abrupt = self._stream(call, watcher, time.monotonic() + timeout_s)
            finally:
                store.stop_watch(watcher)
        if abrupt:
            # No terminating chunk: the client sees the connection break mid-stream.
            self.close_connection = True
            cut(self.connection)
            return
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        if isinstance(self.connection, ssl.SSLSocket):
            # No peeking through TLS; a watching client sends nothing more, so read: its
            # close_notify or EOF reads as b"", a partial record as "would block".
            self.connection.setblocking(False)
            try:
                return self.connection.recv(1) == b""
            except ssl.SSLWantReadError:
                return False
            except OSError:
                return True
            finally:
                self.connection.setblocking(True)
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _stream(self, call: Call, watcher: Watcher, deadline: float) -> bool:
        """Write events until the timeout or a close; True if the stream must be cut abruptly."""
        headers = True  # a Table watch sends its column definitions once, with the first event
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False  # timeoutSeconds reached: a clean end
            try:
                item = watcher.items.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                if self._client_gone():
                    return True  # as the real server cancels a watch whose client hung up
                continue
            if isinstance(item, str):
                return item == ABORT
            kind, obj = item
            if kind == "ERROR":
                event = obj
            elif call.table is not None:
                rows = [] if kind == "BOOKMARK" else [obj]
                event = kube_rest.as_table(call, rows, obj["metadata"]["resourceVersion"], headers=headers)
                headers = False
            else:
                event = kube_rest.out(call.route, obj)
            line = json.dumps({"type": kind, "object": event})
            data = line.encode() + b"\n"
            try:
                # One chunk per event, written at once: the client reads it as soon as it is sent.
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            except OSError:
                return True
