"""A fake Kubernetes API server over real HTTP, for the real `kubernetes` client.

Kubernetes cannot run here, so this is the one fake Mizzen's tests allow; it speaks the
protocol the real server speaks, as far as Mizzen's clients use it:

- REST on `/api/v1/...` and `/apis/<group>/<version>/...`, namespaced and cluster-wide:
  list (with `metadata.resourceVersion`, `labelSelector`), get, create, replace (optimistic
  concurrency on `metadata.resourceVersion`), delete; failures as `Status` objects;
- watch (`?watch=true&resourceVersion=N&allowWatchBookmarks=true&timeoutSeconds=S`) as a
  chunked stream of newline-delimited JSON events, 410 Gone as an ERROR event in the stream;
- discovery (`/api`, `/apis`, `/version`), TokenReview, bearer-token authentication.

Test controls: `expire_history()` (the next watch from before now gets 410), `close_watches()`
(cleanly or by cutting connections), `hold_watches()` (a partition: watches end, new ones wait),
`send_bookmark()`, `fail_next()` (Status errors), `install()` (a CRD appears), `create()`
(seed objects), `register_token()` (TokenReview answers); `requests` records every request.
Everything runs in-process on 127.0.0.1 with a free port, in background threads.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.harness.kube_discovery import TokenInfo
from tests.harness.kube_http import Handler, Request
from tests.harness.kube_resources import ResourceType, default_types
from tests.harness.kube_store import KubeStore


class _Server(ThreadingHTTPServer):
    # Handler threads are daemons (never block interpreter exit) yet joined by server_close().
    daemon_threads = True
    block_on_close = True

    def __init__(self, fake: FakeKubeApiServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((fake.host, 0), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client hung up or the test cut the connection: routine for a server
        self.fake.handler_errors.append(traceback.format_exc())

    def drop_connections(self) -> None:
        """Unblock handler threads idling on keep-alive connections."""
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class FakeKubeApiServer:
    """Start with `with FakeKubeApiServer() as api:`; it stops, watches and all, on exit."""

    def __init__(self, types: list[ResourceType] | None = None, *, history_limit: int = 1000,
                 host: str = "127.0.0.1", version: str = "v1.30.0") -> None:
        self.host = host
        self.version = version
        self.token = secrets.token_urlsafe(24)
        self.store = KubeStore(types if types is not None else default_types(), history_limit=history_limit)
        self.tokens: dict[str, TokenInfo] = {}
        self.requests: list[Request] = []
        self._requests_lock = threading.Lock()
        self._failures: list[tuple[str | None, int, str]] = []
        self.handler_errors: list[str] = []  # bugs in the fake itself; stop() raises them
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeKubeApiServer:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-kube-apiserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.store.stop()
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        if self.handler_errors:
            raise AssertionError("the fake API server failed handling requests:\n" + "\n".join(self.handler_errors))

    def __enter__(self) -> FakeKubeApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake API server is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: Path, *, token: str | None = None, namespace: str = "default") -> Path:
        """A kubeconfig for `kubernetes.config.load_kube_config`: this server, a bearer token."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": token or self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def install(self, rtype: ResourceType) -> None:
        """Serve a new resource type from now on, as installing its CRD does."""
        self.store.add_type(rtype)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` directly (test setup), as if created through the API: it gets a
        resourceVersion and open watches see it."""
        group = obj["apiVersion"].rpartition("/")[0]
        rtype = next(t for t in self.store.types.values() if (t.group, t.kind) == (group, obj["kind"]))
        metadata = obj["metadata"]
        return self.store.create(rtype, (metadata.get("namespace", "default") if rtype.namespaced else "",
                                         metadata["name"]), obj)

    # -- TokenReview ----------------------------------------------------------------------------

    def register_token(self, token: str, *, namespace: str, service_account: str,
                       audiences: tuple[str, ...] = ("https://kubernetes.default.svc",),
                       authenticated: bool = True) -> None:
        """Make TokenReview vouch for `token` as `system:serviceaccount:<namespace>:<service_account>`
        (or, with `authenticated=False`, report it as known but invalid, e.g. expired)."""
        self.tokens[token] = TokenInfo(namespace, service_account, audiences, authenticated)

    # -- test controls ----------------------------------------------------------------------------

    def record(self, request: Request) -> None:
        with self._requests_lock:
            self.requests.append(request)

    def watch_requests(self, plural: str) -> list[Request]:
        with self._requests_lock:
            return [r for r in self.requests if r.path.endswith("/" + plural)
                    and r.query.get("watch") in ("true", "1")]

    def list_requests(self, plural: str) -> list[Request]:
        with self._requests_lock:
            return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + plural)
                    and r.query.get("watch") not in ("true", "1")]

    def fail_next(self, count: int = 1, *, plural: str | None = None, code: int = 500,
                  reason: str = "InternalError") -> None:
        """The next `count` requests (for `plural`, if given) fail with a Status of `code`."""
        with self._requests_lock:
            self._failures.extend([(plural, code, reason)] * count)

    def failures_pending(self) -> int:
        with self._requests_lock:
            return len(self._failures)

    def take_failure(self, path: str) -> tuple[int, str] | None:
        with self._requests_lock:
            for i, (plural, code, reason) in enumerate(self._failures):
                if plural is None or path.endswith("/" + plural):
                    del self._failures[i]
                    return code, reason
        return None

    def open_watches(self, plural: str | None = None) -> int:
        return self.store.open_watches(plural)

    def expire_history(self) -> int:
        """Compact the event history: a watch from any earlier resourceVersion gets 410 Gone."""
        return self.store.expire_history()

    def close_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch: cleanly (terminating chunk) or by cutting the connection."""
        return self.store.close_watches(abrupt=abrupt)

    @contextlib.contextmanager
    def hold_watches(self, *, abrupt: bool = False) -> Iterator[None]:
        """A partition: open watches end, new ones get no events until the block exits."""
        self.store.hold(abrupt=abrupt)
        try:
            yield
        finally:
            self.store.release()

    def send_bookmark(self) -> int:
        return self.store.send_bookmark()
