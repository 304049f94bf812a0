"""Gateway servers with TLS through a real Envoy gateway: HTTPS termination with the
configured certificates (SIMPLE, MUTUAL, OPTIONAL_MUTUAL), SNI picking the server,
httpsRedirect, and SNI passthrough to TLS upstreams."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.stream_servers import StreamEchoServer, exchange
from tests.harness.tls_certs import Issued, TestCA
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Pki:
    gateway_ca: TestCA
    cert_a: Issued
    cert_b: Issued
    client_ca: TestCA
    client: Issued
    stranger: Issued
    upstream_ca: TestCA
    upstream_secure: Issued
    upstream_other: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    gateway_ca, client_ca = TestCA(base / "gateway", "gateway-ca"), TestCA(base / "clients", "client-ca")
    upstream_ca, other_ca = TestCA(base / "upstream", "upstream-ca"), TestCA(base / "other", "other-ca")
    return Pki(
        gateway_ca=gateway_ca,
        cert_a=gateway_ca.issue("gateway-a", dns=("a.example.com",)),
        cert_b=gateway_ca.issue("gateway-b", dns=("b.example.com",)),
        client_ca=client_ca,
        client=client_ca.issue("client", uris=("spiffe://example.com/ns/default/sa/client",), client=True),
        stranger=other_ca.issue("stranger", client=True),
        upstream_ca=upstream_ca,
        upstream_secure=upstream_ca.issue("upstream-secure", dns=("secure.example.com",)),
        upstream_other=upstream_ca.issue("upstream-other", dns=("other.example.com",)),
    )


@pytest.fixture(scope="module")
def echoes() -> Iterator[dict[str, EchoServer]]:
    servers = {name: EchoServer(f"echo-{name}").start() for name in ("a", "b")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def backends(config: ConfigEnv, gateway: Proxy, echoes: dict[str, EchoServer]) -> ConfigEnv:
    config.apply("backends", "---\n".join(
        service_entry(f"echo-{name}.default.svc.cluster.local", [Workload(server, {"app": f"echo-{name}"})])
        for name, server in echoes.items()))
    config.apply("routes", ROUTES)
    return config


ROUTES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: echo-a}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [b.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: echo-b}}]}]
"""


def gateway_yaml(servers: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
{servers}"""


def https_server(port: int, name: str, host: str, cert: Issued, tls: str = "mode: SIMPLE") -> str:
    return f"""\
  - port: {{number: {port}, name: {name}, protocol: HTTPS}}
    hosts: [{host}]
    tls:
      {tls}
      serverCertificate: {cert.cert_path}
      privateKey: {cert.key_path}
"""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    peer_cert: bytes


def connect(port: int) -> socket.socket:
    """Envoy ACKs a TLS listener before it has the certificates (from the agent, over SDS) and
    opens the port once it has them: a refused connection is retried until then."""

    def attempt() -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            return None

    return wait_until(attempt, timeout=10, what=f"the gateway to open port {port}")


def https_get(port: int, sni: str, context: ssl.SSLContext, path: str = "/") -> Answer:
    """GET over a TLS connection to the gateway that offers `sni` and sends it as Host."""
    raw = connect(port)
    tls = context.wrap_socket(raw, server_hostname=sni)
    connection = http.client.HTTPConnection(sni, port, timeout=10)
    connection.sock = tls
    try:
        connection.request("GET", path, headers={"Host": sni})
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                      json.loads(body) if body.startswith(b"{") else {}, tls.getpeercert(binary_form=True) or b"")
    finally:
        connection.close()


def test_simple_terminates_with_the_configured_certificate(backends: ConfigEnv, pki: Pki) -> None:
    port = free_port()
    backends.apply("gateway", gateway_yaml(https_server(port, "https-a", "a.example.com", pki.cert_a)))
    # The client trusts only the gateway CA and checks that the certificate names a.example.com.
    answer = https_get(port, "a.example.com", pki.gateway_ca.client_context())
    assert answer.status == 200
    assert answer.headers["x-upstream"] == "echo-a"
    assert answer.peer_cert == pki.cert_a.der
    assert answer.body["headers"]["x-forwarded-proto"] == "https"
    assert backends.nacks() == []


def test_sni_picks_the_server_and_its_certificate(backends: ConfigEnv, pki: Pki) -> None:
    port = free_port()
    backends.apply("gateway", gateway_yaml(https_server(port, "https-a", "a.example.com", pki.cert_a)
                                           + https_server(port, "https-b", "b.example.com", pki.cert_b)))
    context = pki.gateway_ca.client_context()
    a, b = https_get(port, "a.example.com", context), https_get(port, "b.example.com", context)
    assert (a.status, a.headers["x-upstream"], a.peer_cert) == (200, "echo-a", pki.cert_a.der)
    assert (b.status, b.headers["x-upstream"], b.peer_cert) == (200, "echo-b", pki.cert_b.der)
    # Each server's route configuration holds only its own hosts: a.example.com asked for on
    # b's connection finds no virtual host.
    raw = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                              server_hostname="b.example.com")
    connection = http.client.HTTPConnection("b.example.com", port, timeout=10)
    connection.sock = raw
    connection.request("GET", "/", headers={"Host": "a.example.com"})
    assert connection.getresponse().status == 404
    connection.close()
    # No server matches another name: Envoy has no filter chain for it and drops the handshake.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(port, "c.example.com", ssl._create_unverified_context())
    assert backends.nacks() == []


def test_mutual_requires_a_client_certificate_from_the_ca(backends: ConfigEnv, pki: Pki) -> None:
    port = free_port()
    tls = f"mode: MUTUAL\n      caCertificates: {pki.client_ca.ca_path}"
    backends.apply("gateway", gateway_yaml(https_server(port, "https-a", "a.example.com", pki.cert_a, tls)))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(port, "a.example.com", pki.gateway_ca.client_context())
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(port, "a.example.com", pki.gateway_ca.client_context(cert=pki.stranger))
    answer = https_get(port, "a.example.com", pki.gateway_ca.client_context(cert=pki.client))
    assert (answer.status, answer.headers["x-upstream"]) == (200, "echo-a")
    # The gateway tells the upstream which client it verified (SANITIZE_SET).
    forwarded = answer.body["headers"]["x-forwarded-client-cert"]
    assert "URI=spiffe://example.com/ns/default/sa/client" in forwarded
    assert backends.nacks() == []


def test_optional_mutual_accepts_clients_with_and_without_certificates(backends: ConfigEnv, pki: Pki) -> None:
    port = free_port()
    tls = f"mode: OPTIONAL_MUTUAL\n      caCertificates: {pki.client_ca.ca_path}"
    backends.apply("gateway", gateway_yaml(https_server(port, "https-a", "a.example.com", pki.cert_a, tls)))
    anonymous = https_get(port, "a.example.com", pki.gateway_ca.client_context())
    assert anonymous.status == 200
    assert "x-forwarded-client-cert" not in anonymous.body["headers"]
    known = https_get(port, "a.example.com", pki.gateway_ca.client_context(cert=pki.client))
    assert "spiffe://example.com/ns/default/sa/client" in known.body["headers"]["x-forwarded-client-cert"]
    # A presented certificate is still verified.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(port, "a.example.com", pki.gateway_ca.client_context(cert=pki.stranger))
    assert backends.nacks() == []


def test_https_redirect_answers_301_to_https(backends: ConfigEnv, pki: Pki) -> None:
    http_port, https_port = free_port(), free_port()
    backends.apply("gateway", gateway_yaml(f"""\
  - port: {{number: {http_port}, name: http, protocol: HTTP}}
    hosts: ["*"]
    tls: {{httpsRedirect: true}}
{https_server(https_port, "https-a", "a.example.com", pki.cert_a)}"""))
    for host in ("a.example.com", "unrouted.example.com"):
        response = HTTP.get(f"http://127.0.0.1:{http_port}/some/path?q=1", headers={"host": host}, timeout=10)
        assert response.status_code == 301
        assert response.headers["location"] == f"https://{host}/some/path?q=1"
    assert https_get(https_port, "a.example.com", pki.gateway_ca.client_context()).status == 200
    assert backends.nacks() == []


@pytest.fixture(scope="module")
def tls_upstreams(pki: Pki) -> Iterator[dict[str, StreamEchoServer]]:
    servers = {
        "secure": StreamEchoServer("secure", tls=pki.upstream_ca.server_context(pki.upstream_secure)).start(),
        "other": StreamEchoServer("other", tls=pki.upstream_ca.server_context(pki.upstream_other)).start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


def _tls_service(host: str, server: StreamEchoServer) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {host.split('.', maxsplit=1)[0]}, namespace: default}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: {server.host}, ports: {{tls: {server.port}}}}}]
"""


def test_passthrough_routes_by_sni_and_keeps_tls_end_to_end(
        config: ConfigEnv, gateway: Proxy, pki: Pki, tls_upstreams: dict[str, StreamEchoServer]) -> None:
    port = free_port()
    config.apply("upstreams", "---\n".join(_tls_service(f"{name}.example.com", server)
                                           for name, server in tls_upstreams.items()))
    config.apply("gateway", gateway_yaml(f"""\
  - port: {{number: {port}, name: tls, protocol: TLS}}
    hosts: [secure.example.com, other.example.com]
    tls: {{mode: PASSTHROUGH}}
"""))
    config.apply("routes", """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [secure.example.com, other.example.com]
  gateways: [gw]
  tls:
  - match: [{sniHosts: [secure.example.com]}]
    route: [{destination: {host: secure.example.com, port: {number: 443}}}]
  - match: [{sniHosts: [other.example.com]}]
    route: [{destination: {host: other.example.com, port: {number: 443}}}]
""")
    # The client trusts only the upstreams' CA: the handshake succeeding shows the session
    # reached the upstream, whose certificate (not one of the gateway's) the client sees.
    context = pki.upstream_ca.client_context()
    for name, cert in (("secure", pki.upstream_secure), ("other", pki.upstream_other)):
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                 server_hostname=f"{name}.example.com") as tls:
            assert tls.getpeercert(binary_form=True) == cert.der
            assert exchange(tls, b"hello") == f"{name}:hello".encode()
    assert config.nacks() == []



def test_auto_passthrough_routes_by_the_sni_sidecars_send(
        config: ConfigEnv, gateway: Proxy, pki: Pki, tls_upstreams: dict[str, StreamEchoServer]) -> None:
    port, upstream = free_port(), tls_upstreams["secure"]
    config.apply("upstreams", _tls_service("vault.default.svc.cluster.local", upstream)
                 .replace("MESH_EXTERNAL", "MESH_INTERNAL").replace("name: vault", "name: vault-internal"))
    config.apply("gateway", gateway_yaml(f"""\
  - port: {{number: {port}, name: tls, protocol: TLS}}
    hosts: ["*.svc.cluster.local"]
    tls: {{mode: AUTO_PASSTHROUGH}}
"""))
    # What a sidecar sends when it originates mTLS to vault's port 443: the cluster as SNI
    # and Istio's ALPN. The session still ends at the upstream (its certificate is seen).
    context = pki.upstream_ca.client_context(alpn=("istio",))
    context.check_hostname = False
    sni = "outbound_.443_._.vault.default.svc.cluster.local"
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni) as tls:
        assert tls.getpeercert(binary_form=True) == pki.upstream_secure.der
        assert exchange(tls, b"hello") == b"secure:hello"
    # Without Istio's ALPN no chain matches: Envoy closes the connection.
    plain = pki.upstream_ca.client_context()
    plain.check_hostname = False
    with pytest.raises((ssl.SSLError, ConnectionError)):
        plain.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni).close()
    assert config.nacks() == []
