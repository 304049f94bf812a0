"""Probing the app as the kubelet would, for the probes the injector moved onto the agent.

Follows istio `pilot/cmd/pilot-agent/status/server.go` (`handleAppProbe*`), which follows
the kubelet (`pkg/probe/{http,tcp,grpc}` in Kubernetes):

- The destination is the pod's own address (`instance_ip`), where the kubelet would have
  sent the probe; `app_probe_localhost` sends probes to localhost instead (Istio's
  REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION).
- The sidecar never sees a probe: the agent runs as the proxy user (uid 1337), whose
  traffic the capture rules leave alone, and its HTTP and TCP probes leave from 127.0.0.6
  (Istio's UpstreamLocalAddressIPv4), which the rules leave alone for any user.  gRPC
  probes rely on the user alone (grpcio cannot choose a source address).
- HTTP: GET with the probe's path and scheme (HTTPS without verifying the certificate, as
  the kubelet), the kubelet's request headers (its Host with the agent's port swapped for
  the app's) overridden by the probe's `httpHeaders`, and no keep-alive.  Redirects on the
  same host are followed (at most 10); a redirect elsewhere, or any other 3xx answer,
  counts as success and becomes 200.  Any other status is passed on with up to 10 KiB of
  the app's body, so the kubelet judges it as it would have judged the app's.
- TCP: a connection is success.  gRPC: grpc.health.v1.Health/Check on the probe's service
  answering SERVING is success.
- Everything within the probe's timeoutSeconds; an app that cannot be reached, or does not
  answer in time, is a 500.  Sockets linger 1 s on close, as the kubelet's, so frequent
  probes do not pile up connections in TIME-WAIT (kubernetes#89898).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import httpx

from libs.capture.iptables import INBOUND_SOURCE
from libs.proto_gen.grpc_health.v1 import health_pb2, health_pb2_grpc
from services.agent.app_probers import AppProbe, Grpc, HttpGet, TcpSocket

MAX_REDIRECTS = 10
MAX_BODY = 10 * 1024
LINGER = (socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 1))
# Never passed to the app: they describe the kubelet's connection to the agent, not ours.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade", "host", "content-length"})
HeaderList = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class ProbeResult:
    """What the agent answers the kubelet: `status` with `body`; `reason` is for the log."""

    status: int
    reason: str
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


def failed(reason: str) -> ProbeResult:
    return ProbeResult(500, reason, f"app probe failed: {reason}\n".encode())


def destination(instance_ip: str, localhost: bool) -> str:
    """Where probes go: the pod's address, or its loopback when `localhost`."""
    if not localhost:
        return instance_ip
    return "::1" if _ip_version(instance_ip) == 6 else "127.0.0.1"


def _ip_version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def request_headers(incoming: HeaderList, action: HttpGet, agent_port: int) -> list[tuple[str, str]]:
    """The headers of the GET to the app: the kubelet's, then the probe's own."""
    headers = [(name, value) for name, value in incoming if name.lower() not in HOP_BY_HOP]
    host = next((value for name, value in incoming if name.lower() == "host"), None)
    if host is not None:
        # The kubelet addressed the agent; the app expects what it would have been sent.
        suffix = f":{agent_port}"
        headers.append(("Host", host[: -len(suffix)] + f":{action.port}" if host.endswith(suffix) else host))
    overridden = {name.lower() for name, _ in action.headers}
    headers = [(name, value) for name, value in headers if name.lower() not in overridden]
    return [*headers, *action.headers, ("Connection", "close")]


class AppProber:
    """Probes the app at `destination`; keeps one HTTP client per scheme between probes."""

    def __init__(self, destination: str, agent_port: int) -> None:
        self.destination = destination
        self.agent_port = agent_port
        family = _ip_version(destination)
        self.source = INBOUND_SOURCE if family == 4 else None
        self._hostport = f"[{destination}]" if family == 6 else destination
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def probe(self, probe: AppProbe, incoming: HeaderList) -> ProbeResult:
        """Probe the app for `probe`; `incoming` are the kubelet's request headers."""
        try:
            # The one clock for the whole probe (connect, redirects, TLS, answer).
            async with asyncio.timeout(probe.timeout_s):
                if isinstance(probe.action, HttpGet):
                    return await self._http(probe.action, incoming)
                if isinstance(probe.action, TcpSocket):
                    return await self._tcp(probe.action)
                return await self._grpc(probe.action, incoming, probe.timeout_s)
        except TimeoutError:
            return failed(f"no answer within {probe.timeout_s:g}s")
        except (httpx.HTTPError, OSError) as exc:
            return failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    def _client(self, scheme: str) -> httpx.AsyncClient:
        if scheme not in self._clients:
            # No certificate check for HTTPS, as the kubelet; no connection kept between probes.
            transport = httpx.AsyncHTTPTransport(verify=False, trust_env=False, local_address=self.source,
                                                 socket_options=[LINGER],
                                                 limits=httpx.Limits(max_keepalive_connections=0))
            client = httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False,
                                       headers={"User-Agent": "mizzen-agent"})
            # Not sent by the kubelet, whose probes ask for no compression.
            del client.headers["Accept-Encoding"]
            self._clients[scheme] = client
        return self._clients[scheme]

    async def _http(self, action: HttpGet, incoming: HeaderList) -> ProbeResult:
        url = httpx.URL(f"{action.scheme.lower()}://{self._hostport}:{action.port}{action.path}")
        headers = request_headers(incoming, action, self.agent_port)
        for _ in range(MAX_REDIRECTS + 1):
            async with self._client(url.scheme).stream("GET", url, headers=headers, timeout=None) as response:
                if not response.has_redirect_location:
                    return await _answer(response)
                target = url.join(response.headers["location"])
            if target.host != url.host:
                # The kubelet does not follow a redirect to another host, and counts it as success.
                return ProbeResult(200, f"redirected to {target.host}")
            url = target
        return failed(f"stopped after {MAX_REDIRECTS} redirects")

    async def _tcp(self, action: TcpSocket) -> ProbeResult:
        family = socket.AF_INET6 if self._hostport.startswith("[") else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(*LINGER)
            if self.source is not None:
                sock.bind((self.source, 0))
            await asyncio.get_running_loop().sock_connect(sock, (self.destination, action.port))
        finally:
            sock.close()
        return ProbeResult(200, "connected", b"connected\n")

    async def _grpc(self, action: Grpc, incoming: HeaderList, timeout_s: float) -> ProbeResult:
        options: list[tuple[str, str | int]] = [("grpc.enable_http_proxy", 0)]
        agent = next((value for name, value in incoming if name.lower() == "user-agent"), None)
        if agent:
            options.append(("grpc.primary_user_agent", agent))
        async with grpc.aio.insecure_channel(f"{self._hostport}:{action.port}", options=options) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(service=action.service), timeout=timeout_s)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    return failed("the app does not implement grpc.health.v1.Health")
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return failed(f"no answer within {timeout_s:g}s")
                return failed(f"{code.name}: {exc.details()}")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            return failed(f"service {action.service!r} is {status}")
        return ProbeResult(200, status, f"{status}\n".encode())


async def _answer(response: httpx.Response) -> ProbeResult:
    """The app's status (any 3xx as 200) with at most MAX_BODY bytes of its body."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk[: MAX_BODY - len(body)]
        if len(body) >= MAX_BODY:
            break
    code = response.status_code
    content_type = response.headers.get("content-type", "text/plain; charset=utf-8")
    if 300 <= code < 400:
        return ProbeResult(200, f"the app answered {code}", content_type=content_type)
    return ProbeResult(code, f"the app answered {code}", bytes(body), content_type)
