"""The fake API server's HTTP handler: routing, Status errors, chunked watch streams."""

from __future__ import annotations

import contextlib
import json
import queue
import select
import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tests.harness.kube_discovery import api_group_list, token_review
from tests.harness.kube_resources import ResourceType, parse_selector
from tests.harness.kube_store import ABORT, StoreError, Watcher, status

if TYPE_CHECKING:
    from tests.harness.kube_apiserver import FakeKubeApiServer

DEFAULT_WATCH_TIMEOUT_S = 1800
TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]


@dataclass(frozen=True)
class Route:
    rtype: ResourceType
    version: str
    namespace: str | None
    name: str | None


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive connections and chunked watch streams, as the real server uses.
    protocol_version = "HTTP/1.1"
    server: Any

    def setup(self) -> None:
        super().setup()
        # As Go's net/http does: without it, a response written as headers then body meets the
        # client's delayed ACK (Nagle) and every request takes 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, code: int, reason: str, message: str) -> None:
        self._send_json(code, status(code, reason, message))

    def _dispatch(self, method: str) -> None:
        # Read the body first, whatever the answer: unread bytes would corrupt the next
        # request on this keep-alive connection.
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"  # the client asks discovery for "/apis/"
        query = dict(parse_qsl(parts.query))
        self.fake.record(Request(method, path, query))
        if self.headers.get("Authorization") != f"Bearer {self.fake.token}":
            self._fail(401, "Unauthorized", "Unauthorized")
            return
        failure = self.fake.take_failure(path)
        if failure is not None:
            self._fail(*failure, "injected by the test (fail_next)")
            return
        try:
            body = json.loads(raw) if raw else None
            if not self._discovery(method, path, body):
                self._resource(method, path, query, body)
        except StoreError as exc:
            self._fail(exc.code, exc.reason, exc.message)
        except (ValueError, KeyError, TypeError) as exc:
            self._fail(400, "BadRequest", f"bad request: {exc}")

    # -- discovery and TokenReview --------------------------------------------------------------

    def _discovery(self, method: str, path: str, body: Any) -> bool:
        if method == "POST" and path == TOKENREVIEW_PATH:
            self._send_json(201, token_review(self.fake.tokens, body))
            return True
        if method != "GET":
            return False
        if path == "/version":
            self._send_json(200, {"major": "1", "minor": self.fake.version.split(".")[1],
                                  "gitVersion": self.fake.version})
        elif path == "/api":
            self._send_json(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path == "/apis":
            self._send_json(200, api_group_list(self.fake.store.types.values()))
        else:
            return False
        return True

    # -- resources ---------------------------------------------------------------------------------

    def _route(self, path: str) -> Route:
        segments = [s for s in path.split("/") if s]
        if segments[:1] == ["api"] and len(segments) >= 3:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 4:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise StoreError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rtype = self.fake.store.lookup(group, version, rest[0])
        name = rest[1] if len(rest) == 2 else None
        if (rtype is None or len(rest) > 2  # subresources (status, scale) are not served
                or (namespace is not None and not rtype.namespaced)
                or (rtype.namespaced and name is not None and namespace is None)):
            raise StoreError(404, "NotFound", "the server could not find the requested resource")
        return Route(rtype, version, namespace, name)

    def _out(self, route: Route, obj: dict[str, Any], *, list_item: bool = False) -> dict[str, Any]:
        """`obj` as served at the requested version (Istio's CRDs convert by relabelling)."""
        if list_item and not route.rtype.group:
            return obj  # core list items carry no apiVersion or kind, as on a real server
        return {**obj, "apiVersion": route.rtype.api_version(route.version), "kind": route.rtype.kind}

    def _resource(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        route = self._route(path)
        store, rtype = self.fake.store, route.rtype
        key = (route.namespace or "", route.name or "")
        if method == "GET" and route.name is None:
            if query.get("fieldSelector"):
                raise StoreError(400, "BadRequest", "the fake API server does not support fieldSelector")
            selector = parse_selector(query.get("labelSelector", ""))
            if query.get("watch") in ("true", "1"):
                self._watch(route, query, Watcher(rtype, route.version, route.namespace, selector,
                                                  query.get("allowWatchBookmarks") in ("true", "1")))
                return
            items, rv = store.list(rtype, route.namespace, selector)
            self._send_json(200, {"apiVersion": rtype.api_version(route.version), "kind": f"{rtype.kind}List",
                                  "metadata": {"resourceVersion": str(rv)},
                                  "items": [self._out(route, obj, list_item=True) for obj in items]})
        elif method == "GET":
            self._send_json(200, self._out(route, store.get(rtype, key)))
        elif method == "POST" and route.name is None:
            key = self._check_body(route, body, None)
            self._send_json(201, self._out(route, store.create(rtype, key, body)))
        elif method == "PUT" and route.name is not None:
            self._check_body(route, body, route.name)
            self._send_json(200, self._out(route, store.replace(rtype, key, body)))
        elif method == "DELETE" and route.name is not None:
            self._send_json(200, self._out(route, store.delete(rtype, key)))
        else:
            raise StoreError(405, "MethodNotAllowed", f"{method} is not supported on {path} by the fake")

    def _check_body(self, route: Route, body: Any, name: str | None) -> tuple[str, str]:
        """Validate a create/replace body as the API server does; return its key."""
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise StoreError(400, "BadRequest", "the body must be an object with metadata")
        want = (route.rtype.api_version(route.version), route.rtype.kind)
        if (body.get("apiVersion"), body.get("kind")) != want:
            raise StoreError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) "
                             f"and kind ({body.get('kind')}) do not match {want[0]} {want[1]}")
        metadata = body["metadata"]
        if metadata.get("namespace") not in (None, route.namespace):
            raise StoreError(400, "BadRequest", "the namespace of the provided object does not match the "
                             "namespace sent on the request")
        if not metadata.get("name"):
            raise StoreError(422, "Invalid", f"{route.rtype.kind} is invalid: metadata.name: Required value")
        if name is not None and metadata["name"] != name:
            raise StoreError(400, "BadRequest", "the name of the object does not match the name on the URL")
        return (route.namespace or "", str(metadata["name"]))

    # -- watch ---------------------------------------------------------------------------------------

    def _watch(self, route: Route, query: dict[str, str], watcher: Watcher) -> None:
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
                abrupt = self._stream(route, watcher, time.monotonic() + timeout_s)
            finally:
                store.stop_watch(watcher)
        if abrupt:
            # No terminating chunk: the client sees the connection break mid-stream.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _stream(self, route: Route, watcher: Watcher, deadline: float) -> bool:
        """Write events until the timeout or a close; True if the stream must be cut abruptly."""
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
            line = json.dumps({"type": kind, "object": obj if kind == "ERROR" else self._out(route, obj)})
            data = line.encode() + b"\n"
            try:
                # One chunk per event, written at once: the client reads it as soon as it is sent.
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            except OSError:
                return True
