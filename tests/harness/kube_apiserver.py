"""A fake Kubernetes API server over real HTTP or HTTPS, for the real `kubernetes` client and
the real `kubectl`.

Kubernetes cannot run here, so this is the one fake Mizzen's tests allow; it speaks the
protocol the real server speaks, as far as Mizzen's clients and kubectl use it:

- REST on `/api/v1/...` and `/apis/<group>/<version>/...`, namespaced and cluster-wide:
  list (with `metadata.resourceVersion`, `labelSelector`, `fieldSelector` on metadata.name,
  metadata.namespace and the few fields each type makes selectable), get, create, replace
  (optimistic concurrency on `metadata.resourceVersion`), patch (JSON merge, JSON patch and,
  for built-in kinds, strategic merge; a patch that changes nothing writes nothing),
  server-side apply (`application/apply-patch+yaml`: create or update, field managers and
  conflicts, see kube_apply), delete (DeleteOptions preconditions; a namespace takes its
  contents with it) and deletecollection; `dryRun=All` on every write (validated and
  answered, never stored); failures as `Status` objects;
- CustomResourceDefinitions (served with `cluster_types()`): a valid one, once stored, makes
  its kind served and is reported Established; deleting it takes the kind away;
- watch (`?watch=true&resourceVersion=N&allowWatchBookmarks=true&timeoutSeconds=S`) as a
  chunked stream of newline-delimited JSON events, 410 Gone as an ERROR event in the stream;
- server-side printing: lists, gets and watches as `meta.k8s.io` Tables when asked
  (`kubectl get`'s columns for the core types, Istio's CRD printer columns);
- discovery (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`, and aggregated
  discovery), an OpenAPI v2 document without schemas and an empty OpenAPI v3 index (so
  kubectl validates nothing client-side and sends no `fieldValidation` the fake would ignore);
- TokenReview, bearer-token authentication; with `tls=True`, HTTPS with a throw-away CA that
  `write_kubeconfig()` puts in the kubeconfig (kubectl sends its token only over TLS).

kubectl works against it unmodified (tests/integration/kube/test_kubectl.py, kubectl 1.20 to
1.33): `apply` (client-side: create, then three-way strategic or JSON merge patches with the
last-applied annotation; `--server-side`; `--dry-run=server`), `get` (tables, `-o
wide|yaml|json|name`, `-l`, `--field-selector`, `-A`, `all`), `get --watch` (tables or
`--output-watch-events`), `patch`, `label`, `replace`, `create`, `delete` (by name, `-f`,
`-l`).  Not served: subresources (status, scale, logs, exec), OpenAPI schemas (`kubectl
explain`), server-side field validation against schemas, defaulting, cluster IP allocation
and controllers (objects are stored as sent: a Deployment makes no pods), namespace
existence checks.

Test controls: `expire_history()` (the next watch from before now gets 410), `close_watches()`
(cleanly or by cutting connections), `hold_watches()` (a partition: watches end, new ones wait),
`send_bookmark()`, `fail_next()` (Status errors), `install()` (a CRD appears), `create()`
(seed objects), `register_token()` (TokenReview answers); `requests` records every request
(method, path, query, content type, Accept, user agent).
Everything runs in-process on 127.0.0.1 with a free port, in background threads.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from samples.echo import HttpServer
from tests.harness.kube_discovery import TokenInfo
from tests.harness.kube_http import Handler, Request, cut
from tests.harness.kube_resources import ResourceType, default_types
from tests.harness.kube_store import KubeStore
from tests.harness.tls_certs import TestCA


class _Server(HttpServer):
    # Handler threads are daemons (never block interpreter exit) yet joined by server_close().
    daemon_threads = True
    block_on_close = True

    def __init__(self, fake: FakeKubeApiServer, tls: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((fake.host, 0), Handler)
        if tls is not None:
            # The handshake happens in the handler's thread (Handler.setup), never in accept().
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

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
                cut(connection)


class FakeKubeApiServer:
    """Start with `with FakeKubeApiServer() as api:`; it stops, watches and all, on exit."""

    def __init__(self, types: list[ResourceType] | None = None, *, history_limit: int = 1000,
                 host: str = "127.0.0.1", version: str = "v1.30.0", tls: bool = False) -> None:
        self.host = host
        self.version = version
        # kubectl (client-go) sends credentials only over TLS; the `kubernetes` client does either.
        self.tls = tls
        self.ca_pem: bytes | None = None  # the CA that signed the serving certificate, with `tls`
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
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
        self._server = _Server(self, self._tls_context() if self.tls else None)
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
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None
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
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _tls_context(self) -> ssl.SSLContext:
        """A throw-away CA and a serving certificate for `host` (kept in a temporary directory
        until `stop()`), as a cluster's CA and the API server's certificate."""
        self._tls_dir = tempfile.TemporaryDirectory(prefix="fake-kube-apiserver-")
        ca = TestCA(Path(self._tls_dir.name), "fake-kube-ca")
        cert = ca.issue("kube-apiserver", dns=("localhost", "kubernetes.default.svc"), ips=(self.host,))
        self.ca_pem = ca.ca_path.read_bytes()
        context = ca.server_context(cert)
        context.set_alpn_protocols(["http/1.1"])  # no HTTP/2: Go's client then speaks HTTP/1.1
        return context

    def write_kubeconfig(self, path: Path, *, token: str | None = None, namespace: str = "default") -> Path:
        """A kubeconfig for `kubernetes.config.load_kube_config` and for kubectl: this server (with
        its CA, when serving TLS), a bearer token."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_pem is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": cluster}],
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
