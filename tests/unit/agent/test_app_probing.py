"""The agent probing an app as the kubelet would: real HTTP(S), TCP and gRPC servers on
loopback, and the agent's monitoring server answering /app-health/* over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client import CollectorRegistry

from libs.proto_gen.grpc_health.v1 import health_pb2, health_pb2_grpc
from libs.runtime import MonitoringServer, Readiness
from services.agent.app_health import AppHealth
from services.agent.app_probers import AppProbe, Grpc, HttpGet, TcpSocket, parse_app_probers
from services.agent.app_probing import MAX_BODY, AppProber
from tests.harness.tls_certs import TestCA

KUBELET = [("host", "127.0.0.1:15020"), ("user-agent", "kube-probe/1.30"), ("accept", "*/*")]
REDIRECTS = {"/redirect-ok": "/status/200", "/redirect-fail": "/status/503", "/redirect-loop": "/redirect-loop",
             "/redirect-away": "http://elsewhere.invalid/", "/redirect-none": ""}


class App(ThreadingHTTPServer):
    """A small HTTP app: /status/<code>, redirects, a big body; it remembers each request."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.requests: list[tuple[str, str, list[tuple[str, str]]]] = []
        # A short poll, so shutdown() returns at once.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.01,), name="probed-app", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def __enter__(self) -> App:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: App

    def do_GET(self) -> None:
        self.server.requests.append((self.client_address[0], self.path, list(self.headers.items())))
        if self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), b"status page")
        elif self.path.startswith("/redirect"):
            location = REDIRECTS[self.path]
            self._send(302 if location else 304, b"", location)
        elif self.path == "/big":
            self._send(500, b"x" * (MAX_BODY * 2))
        else:
            self._send(404, b"no such page")

    def _send(self, code: int, body: bytes, location: str = "") -> None:
        self.send_response(code)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app() -> Iterator[App]:
    with App() as server:
        yield server


@pytest.fixture
async def prober() -> AsyncIterator[AppProber]:
    prober = AppProber("127.0.0.1", agent_port=15020)
    yield prober
    await prober.aclose()


def http(port: int, path: str, **fields: Any) -> AppProbe:
    return AppProbe("/app-health/app/readyz", HttpGet(port, path, **fields), timeout_s=2)


@pytest.mark.parametrize(("path", "status"), [
    ("/status/200", 200), ("/status/204", 204),
    ("/status/503", 503), ("/status/404", 404),
    # Every 3xx is success for the kubelet: the agent answers 200.
    ("/redirect-none", 200),
    ("/redirect-ok", 200),
    # Redirects on the same host are followed, so their target decides.
    ("/redirect-fail", 503),
    # A redirect to another host is not followed, and counts as success (the kubelet's rule).
    ("/redirect-away", 200),
])
async def test_http_status_as_the_kubelet_sees_it(app: App, prober: AppProber, path: str, status: int) -> None:
    result = await prober.probe(http(app.port, path), KUBELET)
    assert result.status == status, result.reason


async def test_http_redirect_loop_fails(app: App, prober: AppProber) -> None:
    result = await prober.probe(http(app.port, "/redirect-loop"), KUBELET)
    assert result.status == 500 and "stopped after 10 redirects" in result.reason
    assert len(app.requests) == 11


async def test_http_passes_on_the_apps_answer_up_to_10_kib(app: App, prober: AppProber) -> None:
    result = await prober.probe(http(app.port, "/status/503"), KUBELET)
    assert (result.body, result.content_type) == (b"status page", "text/plain")
    big = await prober.probe(http(app.port, "/big"), KUBELET)
    assert big.status == 500 and big.body == b"x" * MAX_BODY


async def test_http_request_as_the_kubelet_would_send_it(app: App, prober: AppProber) -> None:
    probe = http(app.port, "/status/200", headers=(("X-Custom", "probe"),))
    assert (await prober.probe(probe, KUBELET)).ok
    [(source, path, headers)] = app.requests
    # From Envoy's passthrough address, which the capture rules never redirect.
    assert source == "127.0.0.6"
    assert path == "/status/200"
    sent = {name.lower(): value for name, value in headers}
    assert sent["host"] == f"127.0.0.1:{app.port}", "the kubelet's Host, with the app's port"
    assert sent["user-agent"] == "kube-probe/1.30"
    assert sent["x-custom"] == "probe"
    assert sent["connection"] == "close"
    assert "accept-encoding" not in sent


async def test_https_without_verifying_the_certificate(tmp_path: Path, prober: AppProber) -> None:
    ca = TestCA(tmp_path)
    # Issued for another name, by a CA nobody trusts: the kubelet probes it anyway.
    context = ca.server_context(ca.issue("somewhere-else", dns=("somewhere.else",)))
    with App(context) as app:
        result = await prober.probe(http(app.port, "/status/200", scheme="HTTPS"), KUBELET)
        assert result.status == 200, result.reason
        plain = await prober.probe(http(app.port, "/status/200"), KUBELET)
        assert plain.status != 200


def unused_port() -> socket.socket:
    """A bound port nobody listens on (kept bound, so nobody else takes it meanwhile)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def test_unreachable_app_is_a_500(prober: AppProber) -> None:
    with unused_port() as closed:
        port = closed.getsockname()[1]
        for probe in (http(port, "/"), AppProbe("/app-health/app/livez", TcpSocket(port)),
                      AppProbe("/app-health/app/livez", Grpc(port))):
            result = await prober.probe(probe, KUBELET)
            assert result.status == 500, probe
            assert result.body.startswith(b"app probe failed: ")


async def test_an_app_that_never_answers_fails_within_the_timeout(prober: AppProber) -> None:
    # Connections complete in the kernel's backlog; nothing ever reads them.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        probe = AppProbe("/app-health/app/livez", HttpGet(hung.getsockname()[1], "/"), timeout_s=0.3)
        started = time.monotonic()
        result = await prober.probe(probe, KUBELET)
        assert result.status == 500 and result.reason == "no answer within 0.3s"
        assert time.monotonic() - started < 2


async def test_tcp_probe_connects(app: App, prober: AppProber) -> None:
    result = await prober.probe(AppProbe("/app-health/app/livez", TcpSocket(app.port)), KUBELET)
    assert result.status == 200


class Health(health_pb2_grpc.HealthServicer):
    statuses = {"": health_pb2.HealthCheckResponse.SERVING, "down": health_pb2.HealthCheckResponse.NOT_SERVING}

    def __init__(self) -> None:
        self.agents: list[str] = []

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.agents.append(dict(context.invocation_metadata() or ()).get("user-agent", ""))
        if request.service not in self.statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service}")
        return health_pb2.HealthCheckResponse(status=self.statuses[request.service])


@pytest.fixture
async def grpc_app() -> AsyncIterator[tuple[int, Health]]:
    server = grpc.aio.server()
    health = Health()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port, health
    await server.stop(None)


@pytest.mark.parametrize(("service", "status", "reason"), [
    ("", 200, "SERVING"),
    ("down", 500, "service 'down' is NOT_SERVING"),
    ("nope", 500, "NOT_FOUND: unknown service nope"),
])
async def test_grpc_health_check(grpc_app: tuple[int, Health], prober: AppProber, service: str, status: int,
                                 reason: str) -> None:
    port, health = grpc_app
    result = await prober.probe(AppProbe("/app-health/app/readyz", Grpc(port, service)), KUBELET)
    assert (result.status, result.reason) == (status, reason)
    assert health.agents[-1].startswith("kube-probe/1.30")


async def test_grpc_app_without_the_health_service(prober: AppProber) -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        result = await prober.probe(AppProbe("/app-health/app/readyz", Grpc(port)), KUBELET)
    finally:
        await server.stop(None)
    assert (result.status, result.reason) == (500, "the app does not implement grpc.health.v1.Health")


@pytest.fixture
async def agent(app: App) -> AsyncIterator[str]:
    """The agent's monitoring server with the app's probes behind it."""
    probes = parse_app_probers(
        f'{{"/app-health/app/readyz": {{"httpGet": {{"path": "/status/200", "port": {app.port}}}}},'
        f' "/app-health/app/livez": {{"httpGet": {{"path": "/status/503", "port": {app.port}}}}}}}')
    registry = CollectorRegistry()
    health = AppHealth(probes, AppProber("127.0.0.1", agent_port=15020), registry)
    server = MonitoringServer(host="127.0.0.1", port=0, readiness=Readiness(), registry=registry, app=health)
    # Bound before started() returns: a request queues until uvicorn accepts it.
    task = asyncio.create_task(server.serve(), name="monitoring")
    port = await server.started()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        await task
        await health.aclose()


async def test_the_monitoring_port_answers_the_kubelets_probes(agent: str) -> None:
    async with httpx.AsyncClient(base_url=agent, trust_env=False) as client:
        ready = await client.get("/app-health/app/readyz", headers={"User-Agent": "kube-probe/1.30"})
        assert (ready.status_code, ready.text) == (200, "status page")
        live = await client.get("/app-health/app/livez")
        assert live.status_code == 503
        unknown = await client.get("/app-health/other/readyz")
        assert (unknown.status_code, unknown.text) == (404, "no app probe at /app-health/other/readyz\n")
        assert (await client.get("/healthz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'agent_app_probes_total{probe="/app-health/app/readyz",result="success"} 1.0' in metrics
    assert 'agent_app_probes_total{probe="/app-health/app/livez",result="failure"} 1.0' in metrics
