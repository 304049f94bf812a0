"""DestinationRule traffic policies through a real Envoy gateway: load balancing and
consistent hashing, outlier detection, circuit breaking, TLS origination, and which policy
(rule, port-level, subset) a cluster ends up with."""

from __future__ import annotations

import datetime as dt
import re
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from libs.envoy import CLUSTER_TYPE
from samples.echo import EchoServer, echo_handler
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.upstreams import gateway as gateway_yaml
from tests.harness.waiting import NotReady, wait_until

pytestmark = pytest.mark.integration

POOL = "pool.default.svc.cluster.local"
POOL_CLUSTER = f"outbound|80||{POOL}"


# -- upstreams -------------------------------------------------------------------------------

class _Server:
    """A threaded HTTP server on 127.0.0.1 with an optional TLS context."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None = None) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if context is not None:
            # A failed handshake raises in accept(), which socketserver shrugs off.
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def failing_handler(name: str, hits: list[str]) -> type[BaseHTTPRequestHandler]:
    """Always 500: a broken endpoint for outlier detection."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(500)
            self.send_header("x-upstream", name)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass(frozen=True)
class Endpoint:
    port: int
    labels: dict[str, str]


def service_entry(host: str, endpoints: list[Endpoint], name: str) -> str:
    listed = "\n".join(f"  - {{address: 127.0.0.1, ports: {{http: {e.port}}}, "
                       f"labels: {{{', '.join(f'{k}: {v}' for k, v in e.labels.items())}}}}}" for e in endpoints)
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
{listed}
"""


def virtual_service(host: str, *, subset: str = "", retries: bool = True) -> str:
    destination = f"{{host: {host}{f', subset: {subset}' if subset else ''}}}"
    retry = "" if retries else ", retries: {attempts: 0}"
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{{route: [{{destination: {destination}}}]{retry}}}]
"""


def destination_rule(host: str, body: str) -> str:
    indented = "".join(f"  {line}\n" for line in body.strip("\n").splitlines())
    return f"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: dr, namespace: default}}
spec:
  host: {host}
{indented}"""


# -- what Envoy has --------------------------------------------------------------------------

def active_cluster(proxy: Proxy, name: str) -> dict[str, Any] | None:
    for entry in proxy.admin.dynamic(CLUSTER_TYPE):
        if entry["cluster"]["name"] == name:
            return dict(entry["cluster"])
    return None


def wait_cluster(config: ConfigEnv, proxy: Proxy, name: str, check: Callable[[dict[str, Any]], bool], *,
                 timeout: float = 30) -> dict[str, Any]:
    """The active cluster once it satisfies `check` (an ACK precedes warming, so poll); on a
    timeout, says what Envoy rejected, if anything."""
    def ready() -> dict[str, Any] | None:
        cluster = active_cluster(proxy, name)
        return cluster if cluster is not None and check(cluster) else None
    try:
        return wait_until(ready, timeout=timeout, what=f"cluster {name} to be active with the new policy")
    except NotReady as exc:
        raise NotReady(f"{exc}; NACKs: {config.nacks()}") from None


def stat(proxy: Proxy, cluster: str, name: str) -> int:
    full = f"cluster.{cluster}.{name}"
    return proxy.admin.stats(f"^{re.escape(full)}$").get(full, 0)


def http_options(cluster: dict[str, Any]) -> dict[str, Any]:
    options = cluster.get("typed_extension_protocol_options", {})
    return dict(options.get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {}))


def tls_context(cluster: dict[str, Any]) -> dict[str, Any]:
    return dict(cluster.get("transport_socket", {}).get("typed_config", {}))


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echoes() -> Iterator[list[EchoServer]]:
    servers = [EchoServer(f"pool-{i}").start() for i in range(3)]
    yield servers
    for server in servers:
        server.stop()


def pool_entry(echoes: list[EchoServer]) -> str:
    return service_entry(POOL, [Endpoint(s.port, {"app": "pool", "version": f"v{i}"}) for i, s in enumerate(echoes)],
                         "pool")


@pytest.fixture
def pool(config: ConfigEnv, gateway: Proxy, echoes: list[EchoServer]) -> tuple[ConfigEnv, int]:
    """The gateway on a fresh port routing everything to the three `pool` endpoints."""
    port = free_port()
    config.apply("gateway", gateway_yaml(port))
    config.apply("pool-se", pool_entry(echoes))
    config.apply("vs", virtual_service("pool"))
    return config, port


def get(client: httpx.Client, port: int, path: str = "/", **headers: str) -> httpx.Response:
    return client.get(f"http://127.0.0.1:{port}{path}", headers=headers)


# -- load balancing and consistent hashing ---------------------------------------------------

@pytest.mark.parametrize("simple", ["LEAST_REQUEST", "RANDOM", "ROUND_ROBIN"])
def test_simple_load_balancers_reach_every_endpoint(pool: tuple[ConfigEnv, int], gateway: Proxy, simple: str) -> None:
    config, port = pool
    config.apply("dr", destination_rule("pool", f"trafficPolicy: {{loadBalancer: {{simple: {simple}}}}}"))
    wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c.get("lb_policy", "ROUND_ROBIN") == simple)
    with httpx.Client(timeout=10) as client:
        seen = Counter(get(client, port).headers["x-upstream"] for _ in range(60))
    assert set(seen) == {"pool-0", "pool-1", "pool-2"}, seen
    assert config.nacks() == []


def test_no_rule_means_least_request_and_wide_open_circuit_breakers(pool: tuple[ConfigEnv, int],
                                                                    gateway: Proxy) -> None:
    config, _ = pool
    cluster = wait_cluster(config, gateway, POOL_CLUSTER, lambda c: True)
    assert cluster["lb_policy"] == "LEAST_REQUEST"
    [thresholds] = cluster["circuit_breakers"]["thresholds"]
    for field in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
        assert thresholds[field] == 2**32 - 1
    assert config.nacks() == []


def users_to_endpoints(client: httpx.Client, port: int, request: Callable[[str], httpx.Response]) -> dict[str, str]:
    return {user: request(user).headers["x-upstream"] for user in (f"user-{i}" for i in range(30))}


def assert_sticky_and_spread(request: Callable[[str], httpx.Response], client: httpx.Client, port: int) -> None:
    # One user stays on one endpoint across 50 requests...
    alice = Counter(request("alice").headers["x-upstream"] for _ in range(50))
    assert len(alice) == 1, alice
    # ...and different users land on different endpoints (30 users on 3 endpoints: all on
    # one would be a 3^-29 accident).
    spread = users_to_endpoints(client, port, request)
    assert len(set(spread.values())) >= 2, spread
    # Each user keeps its endpoint.
    assert users_to_endpoints(client, port, request) == spread


def test_consistent_hash_on_a_header(pool: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    config, port = pool
    config.apply("dr", destination_rule("pool", """
trafficPolicy:
  loadBalancer:
    consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 2048}}
"""))
    cluster = wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c.get("lb_policy") == "RING_HASH")
    assert cluster["ring_hash_lb_config"]["minimum_ring_size"] == "2048"
    with httpx.Client(timeout=10) as client:
        assert_sticky_and_spread(lambda user: get(client, port, **{"x-user": user}), client, port)
    assert config.nacks() == []


def test_consistent_hash_on_a_query_parameter_with_maglev(pool: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    config, port = pool
    config.apply("dr", destination_rule("pool", """
trafficPolicy:
  loadBalancer:
    consistentHash: {httpQueryParameterName: user, maglev: {tableSize: 65537}}
"""))
    cluster = wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c.get("lb_policy") == "MAGLEV")
    assert cluster["maglev_lb_config"]["table_size"] == "65537"
    with httpx.Client(timeout=10) as client:
        assert_sticky_and_spread(lambda user: get(client, port, f"/?user={user}"), client, port)
    assert config.nacks() == []


def test_consistent_hash_on_a_cookie_that_envoy_sets(pool: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    config, port = pool
    config.apply("dr", destination_rule("pool", """
trafficPolicy:
  loadBalancer:
    consistentHash: {httpCookie: {name: session, path: /, ttl: 60s}}
"""))
    wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c.get("lb_policy") == "RING_HASH")
    with httpx.Client(timeout=10) as client:
        # No cookie yet: Envoy picks an endpoint and hands out a cookie that leads back to it.
        first = get(client, port)
        set_cookie = first.headers["set-cookie"]
        assert re.fullmatch(r'session="?[^;"]+"?; Max-Age=60; Path=/; HttpOnly', set_cookie), set_cookie
        cookie = set_cookie.split(";", 1)[0]
        stuck = Counter(get(client, port, cookie=cookie).headers["x-upstream"] for _ in range(50))
        assert stuck == Counter({first.headers["x-upstream"]: 50})
        # A request that brings its cookie gets no new one.
        assert "set-cookie" not in get(client, port, cookie=cookie).headers
        assert_sticky_and_spread(lambda user: get(client, port, cookie=f"session={user}"), client, port)
    assert config.nacks() == []


# -- outlier detection and circuit breaking --------------------------------------------------

@pytest.fixture
def flaky(config: ConfigEnv, gateway: Proxy, echoes: list[EchoServer]) -> Iterator[tuple[ConfigEnv, int, list[str]]]:
    """Two good endpoints and one that always answers 500."""
    hits: list[str] = []
    broken = _Server(failing_handler("broken", hits))
    port = free_port()
    config.apply("gateway", gateway_yaml(port))
    config.apply("flaky-se", service_entry("flaky.example.com", [
        Endpoint(echoes[0].port, {"app": "flaky"}), Endpoint(echoes[1].port, {"app": "flaky"}),
        Endpoint(broken.port, {"app": "flaky"})], "flaky"))
    # No retries: every 500 reaches the client, and the detector counts each one.
    config.apply("vs", virtual_service("flaky.example.com", retries=False))
    yield config, port, hits
    broken.stop()


def test_outlier_detection_ejects_a_failing_endpoint(flaky: tuple[ConfigEnv, int, list[str]], gateway: Proxy) -> None:
    config, port, broken_hits = flaky
    name = "outbound|80||flaky.example.com"
    config.apply("dr", destination_rule("flaky.example.com", """
trafficPolicy:
  outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 5m, maxEjectionPercent: 100}
"""))
    cluster = wait_cluster(config, gateway, name, lambda c: "outlier_detection" in c)
    assert cluster["outlier_detection"]["consecutive_5xx"] == 2
    assert cluster["common_lb_config"]["healthy_panic_threshold"] == {}  # 0: panic mode off
    with httpx.Client(timeout=10) as client:
        def ejected() -> bool:
            get(client, port)
            return stat(gateway, name, "outlier_detection.ejections_active") == 1
        wait_until(ejected, timeout=20, interval=0, what="the failing endpoint to be ejected")
        before = len(broken_hits)
        answers = Counter((r.status_code, r.headers["x-upstream"]) for r in (get(client, port) for _ in range(40)))
    assert set(answers) <= {(200, "pool-0"), (200, "pool-1")}, answers
    assert len(broken_hits) == before
    assert stat(gateway, name, "outlier_detection.ejections_enforced_consecutive_5xx") >= 1
    assert config.nacks() == []


def test_circuit_breaker_overflow_answers_503(pool: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    config, port = pool
    config.apply("vs", virtual_service("pool", retries=False))
    config.apply("dr", destination_rule("pool", """
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 1}
    http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 100}
"""))
    cluster = wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c["circuit_breakers"]["thresholds"][0].get(
        "max_connections") == 1)
    assert cluster["circuit_breakers"]["thresholds"][0]["max_pending_requests"] == 1
    assert http_options(cluster)["common_http_protocol_options"]["max_requests_per_connection"] == 100
    before = stat(gateway, POOL_CLUSTER, "upstream_rq_pending_overflow")

    def slow(_: int) -> httpx.Response:
        return HTTP.get(f"http://127.0.0.1:{port}/", headers={"x-echo-delay-ms": "400"}, timeout=10)

    with ThreadPoolExecutor(max_workers=10) as pool_threads:
        responses = list(pool_threads.map(slow, range(10)))
    overflowed = [r for r in responses if r.status_code == 503]
    # One connection, one request waiting for it: of ten at once, most overflow.
    assert len(overflowed) >= 5, [r.status_code for r in responses]
    assert all(r.headers.get("x-envoy-overloaded") == "true" for r in overflowed)
    assert any(r.status_code == 200 for r in responses)
    assert stat(gateway, POOL_CLUSTER, "upstream_rq_pending_overflow") - before == len(overflowed)
    assert config.nacks() == []


# -- which policy applies --------------------------------------------------------------------

def test_subset_and_port_level_policies_override_the_rule(pool: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    config, port = pool
    config.apply("dr", destination_rule("pool", """
trafficPolicy:
  loadBalancer: {simple: RANDOM}
  connectionPool: {tcp: {maxConnections: 50}}
subsets:
- name: v0
  labels: {version: v0}
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
- name: v1
  labels: {version: v1}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      outlierDetection: {consecutive5xxErrors: 7}
"""))
    config.apply("vs", virtual_service("pool", subset="v0"))
    wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c.get("lb_policy") == "RANDOM")
    clusters = {subset: wait_cluster(config, gateway, f"outbound|80|{subset}|{POOL}", lambda c: True)
                for subset in ("", "v0", "v1", "v2")}
    limits = {s: c["circuit_breakers"]["thresholds"][0]["max_connections"] for s, c in clusters.items()}
    # The rule's policy; a subset's loadBalancer replacing the rule's, its connection pool
    # inherited; no subset policy; a subset's port-level entry replacing every component.
    assert clusters[""]["lb_policy"] == "RANDOM"
    assert clusters["v0"]["lb_policy"] == "RING_HASH"
    assert clusters["v1"]["lb_policy"] == "RANDOM"
    assert clusters["v2"]["lb_policy"] == "LEAST_REQUEST"
    assert limits == {"": 50, "v0": 50, "v1": 50, "v2": 2**32 - 1}
    assert clusters["v2"]["outlier_detection"]["consecutive_5xx"] == 7
    assert "outlier_detection" not in clusters["v1"]
    # The route to subset v0 hashes on the subset's header, and traffic sticks to v0's endpoint.
    route = gateway.admin.route_config(f"http.{port}")
    assert route is not None
    [action] = [r["route"] for vh in route["route_config"]["virtual_hosts"] for r in vh["routes"]]
    assert action["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    with httpx.Client(timeout=10) as client:
        assert {get(client, port, **{"x-user": f"u{i}"}).headers["x-upstream"] for i in range(10)} == {"pool-0"}
    assert config.nacks() == []


def test_a_policy_envoy_rejects_when_mistranslated_is_accepted(pool: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    """HTTP/1 protocol options without an explicit protocol, SAN checks without a trusted CA,
    keepalive in sub-second units, a Maglev table: each NACKs if translated naively."""
    config, port = pool
    config.apply("dr", destination_rule("pool", """
trafficPolicy:
  connectionPool:
    tcp: {connectTimeout: 0.25s, tcpKeepalive: {time: 0.5s, interval: 2s, probes: 3}, maxConnectionDuration: 1h}
    http: {idleTimeout: 30s, maxRetries: 5, http2MaxRequests: 64}
  outlierDetection: {consecutiveGatewayErrors: 3, minHealthPercent: 40}
  loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 251}}}
  portLevelSettings:
  - port: {number: 8443}
    tls: {mode: SIMPLE, subjectAltNames: [pool.example.com]}
"""))
    cluster = wait_cluster(config, gateway, POOL_CLUSTER, lambda c: c.get("lb_policy") == "MAGLEV")
    assert config.nacks() == []
    assert cluster["connect_timeout"] == "0.250s"
    assert cluster["upstream_connection_options"]["tcp_keepalive"] == {
        "keepalive_probes": 3, "keepalive_time": 1, "keepalive_interval": 2}
    assert http_options(cluster)["common_http_protocol_options"] == {"idle_timeout": "30s",
                                                                    "max_connection_duration": "3600s"}
    assert http_options(cluster)["explicit_http_config"] == {"http_protocol_options": {}}
    assert cluster["common_lb_config"]["healthy_panic_threshold"] == {"value": 40}
    with httpx.Client(timeout=10) as client:
        assert len({get(client, port).headers["x-upstream"] for _ in range(20)}) == 1
    # The SIMPLE TLS policy of another port, on a service that has it, verifies against the
    # system roots: Envoy accepts the SAN check only with a trusted CA.
    config.apply("pool-se", pool_entry_with_port(8443))
    tls_cluster = wait_cluster(config, gateway, f"outbound|8443||{POOL}", lambda c: "transport_socket" in c)
    combined = tls_context(tls_cluster)["common_tls_context"]["combined_validation_context"]
    assert combined["validation_context_sds_secret_config"]["name"] == "file-root:/etc/ssl/certs/ca-certificates.crt"
    assert config.nacks() == []


def pool_entry_with_port(extra: int) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: pool, namespace: default}}
spec:
  hosts: [{POOL}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}, {{number: {extra}, name: https-alt, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1}}]
"""


# -- TLS origination -------------------------------------------------------------------------

@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _issue(directory: Path, name: str, *, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
           dns: str = "") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(signer_cert.subject if signer_cert else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = _issue(directory, "ca", issuer=None)
    _issue(directory, "server", issuer=ca, dns="secure.example.com")
    _issue(directory, "client", issuer=ca)
    return Pki(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem",
               directory / "client.pem", directory / "client-key.pem")


def tls_upstream(pki: Pki, *, require_client_cert: bool) -> tuple[_Server, list[dict[str, Any]]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    hits: list[dict[str, Any]] = []
    return _Server(echo_handler("secure", hits), context), hits


@pytest.fixture
def secure(config: ConfigEnv, gateway: Proxy, pki: Pki,
           request: pytest.FixtureRequest) -> Iterator[tuple[ConfigEnv, int]]:
    """An HTTPS-only upstream (client certificates required if the test is marked so),
    known as secure.example.com on plain port 80 so that the gateway originates TLS."""
    server, _ = tls_upstream(pki, require_client_cert=getattr(request, "param", False))
    port = free_port()
    config.apply("gateway", gateway_yaml(port))
    config.apply("secure-se", service_entry("secure.example.com", [Endpoint(server.port, {"app": "secure"})],
                                            "secure"))
    config.apply("vs", virtual_service("secure.example.com", retries=False))
    yield config, port
    server.stop()


SECURE_CLUSTER = "outbound|80||secure.example.com"


def tls_rule(pki: Pki, body: str) -> str:
    return destination_rule("secure.example.com", f"trafficPolicy:\n  tls: {{{body}, caCertificates: {pki.ca}}}")


def test_simple_tls_origination_verifies_the_server(secure: tuple[ConfigEnv, int], gateway: Proxy, pki: Pki) -> None:
    config, port = secure
    config.apply("dr", tls_rule(pki, "mode: SIMPLE, sni: secure.example.com, subjectAltNames: [secure.example.com]"))
    cluster = wait_cluster(config, gateway, SECURE_CLUSTER, lambda c: "transport_socket" in c)
    context = tls_context(cluster)
    assert context["sni"] == "secure.example.com"
    combined = context["common_tls_context"]["combined_validation_context"]
    assert combined["validation_context_sds_secret_config"]["name"] == f"file-root:{pki.ca}"
    response = HTTP.get(f"http://127.0.0.1:{port}/hello", timeout=10)
    assert response.status_code == 200
    assert response.json()["path"] == "/hello"
    assert stat(gateway, SECURE_CLUSTER, "ssl.handshake") >= 1
    assert config.nacks() == []


def test_simple_tls_with_a_wrong_subject_alt_name_fails(secure: tuple[ConfigEnv, int], gateway: Proxy,
                                                        pki: Pki) -> None:
    config, port = secure
    config.apply("dr", tls_rule(pki, "mode: SIMPLE, sni: secure.example.com, subjectAltNames: [other.example.com]"))
    wait_cluster(config, gateway, SECURE_CLUSTER, lambda c: "transport_socket" in c)
    response = HTTP.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert response.status_code == 503
    assert stat(gateway, SECURE_CLUSTER, "ssl.fail_verify_san") >= 1
    assert config.nacks() == []


@pytest.mark.parametrize("secure", [True], indirect=True)
def test_mutual_tls_origination_presents_the_client_certificate(secure: tuple[ConfigEnv, int], gateway: Proxy,
                                                                pki: Pki) -> None:
    config, port = secure
    # Without a client certificate the upstream refuses the handshake...
    config.apply("dr", tls_rule(pki, "mode: SIMPLE, sni: secure.example.com"))
    wait_cluster(config, gateway, SECURE_CLUSTER, lambda c: "transport_socket" in c)
    assert HTTP.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 503
    # ...with one it answers.
    config.apply("dr", tls_rule(pki, f"mode: MUTUAL, sni: secure.example.com, subjectAltNames: [secure.example.com], "
                                     f"clientCertificate: {pki.client_cert}, privateKey: {pki.client_key}"))
    cluster = wait_cluster(config, gateway, SECURE_CLUSTER, lambda c: "tls_certificate_sds_secret_configs" in
                           tls_context(c).get("common_tls_context", {}))
    [certificate] = tls_context(cluster)["common_tls_context"]["tls_certificate_sds_secret_configs"]
    assert certificate["name"] == f"file-cert:{pki.client_cert}~{pki.client_key}"
    response = wait_until(lambda: (r := HTTP.get(f"http://127.0.0.1:{port}/", timeout=10)).status_code == 200 and r,
                          timeout=10, what="the mTLS request to succeed")
    assert response.headers["x-upstream"] == "secure"
    assert config.nacks() == []


def test_credential_name_names_istio_secrets_and_fails_closed(pool: tuple[ConfigEnv, int], gateway: Proxy,
                                                             echoes: list[EchoServer]) -> None:
    """credentialName secrets come from the node agent's SDS (`sds-grpc`), which has no
    credential source on this gateway: Envoy accepts the config, and once the cluster stops waiting for the secret
    (initial_fetch_timeout, 15 s) it refuses to talk to the plain-text upstream at all."""
    config, port = pool
    config.apply("vs", virtual_service("pool", retries=False))
    assert HTTP.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    config.apply("dr", destination_rule("pool", "trafficPolicy: {tls: {mode: MUTUAL, credentialName: egress-cred}}"))
    # Warming waits for the secret up to Envoy's 15 s initial_fetch_timeout.
    cluster = wait_cluster(config, gateway, POOL_CLUSTER, lambda c: "transport_socket" in c, timeout=60)
    common = tls_context(cluster)["common_tls_context"]
    [certificate] = common["tls_certificate_sds_secret_configs"]
    assert certificate["name"] == "kubernetes://egress-cred"
    grpc = certificate["sds_config"]["api_config_source"]["grpc_services"]
    assert grpc == [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]
    ca = common["combined_validation_context"]["validation_context_sds_secret_config"]
    assert ca["name"] == "kubernetes://egress-cred-cacert"
    hits_before = sum(len(server.hits) for server in echoes)
    assert HTTP.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 503
    assert sum(len(server.hits) for server in echoes) == hits_before
    assert config.nacks() == []
