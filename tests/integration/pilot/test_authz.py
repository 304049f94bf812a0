"""AuthorizationPolicy enforced by real Envoys, judged by real responses: mTLS identities
from citadel, a TCP port, an ingress gateway behind a trusted proxy, dry runs counted in
Envoy's stats, and CUSTOM policies checked by a real ext_authz server.

One control plane and one set of proxies per module; each test applies its policies and
the `config` fixture removes them afterwards."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.pki import SpiffeId
from samples.echo import EchoServer
from tests.harness.citadel import Citadel, identity_sidecar, start_citadel
from tests.harness.config_env import ConfigEnv
from tests.harness.ext_authz import DENIED_BODY, ExtAuthzServer, HttpExtAuthzServer
from tests.harness.http import HTTP, via_http_proxy
from tests.harness.identity import ClientCert, client_from_citadel
from tests.harness.jwt_issuer import JwksServer, JwtIssuer, b64url_decode
from tests.harness.mesh import Mesh, Proxy
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.stream_servers import StreamEchoServer
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

CLIENT_IP, SERVER_IP, GATEWAY_IP, OUTSIDE_IP, AUTHZ_IP = "127.0.41.1", "127.0.41.2", "127.0.41.3", "127.0.41.9", \
    "127.0.41.20"
APP_PORT, DB_APP_PORT, GATEWAY_PORT = 19080, 15432, 8080
DENIED = "RBAC: access denied"


def services(grpc_port: int, http_port: int, dead_port: int) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}, {{number: 5432, name: tcp-db, protocol: TCP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: default, labels: {{security.istio.io/tlsMode: istio}}}}
spec: {{address: {SERVER_IP}, labels: {{app: reviews, version: v1}}, serviceAccount: bookinfo-reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext-authz, namespace: default}}
spec:
  hosts: [ext-authz.authz.local]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: grpc, protocol: GRPC}}, {{number: 8000, name: http, protocol: HTTP}}]
  endpoints: [{{address: {AUTHZ_IP}, ports: {{grpc: {grpc_port}, http: {http_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: dead-authz, namespace: default}}
spec:
  hosts: [dead-authz.authz.local]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: grpc, protocol: GRPC}}]
  endpoints: [{{address: {AUTHZ_IP}, ports: {{grpc: {dead_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {GATEWAY_PORT}, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews-ingress, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [istio-system/ingress]
  http: [{{route: [{{destination: {{host: reviews, port: {{number: 9080}}}}}}]}}]
"""


def mesh_config(*, fail_open: bool = False, access_log: Path | None = None) -> str:
    shadow = "%DYNAMIC_METADATA(envoy.filters.http.rbac:istio_dry_run_deny_shadow_engine_result)%"
    logging = (f"""
    accessLogFile: {access_log}
    accessLogFormat: "%REQ(:PATH)% dry-run={shadow}\\n"
""" if access_log else "")
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |{logging}
    defaultConfig: {{gatewayTopology: {{numTrustedProxies: 1}}}}
    extensionProviders:
    - name: ext-grpc
      envoyExtAuthzGrpc: {{service: ext-authz.authz.local, port: 9000, timeout: 2s}}
    - name: ext-dead
      envoyExtAuthzGrpc:
        {{service: dead-authz.authz.local, port: 9000, timeout: 1s, failOpen: {str(fail_open).lower()}}}
    - name: ext-slow
      envoyExtAuthzGrpc: {{service: ext-authz.authz.local, port: 9000, timeout: 0.5s, statusOnError: "503"}}
    - name: ext-http
      envoyExtAuthzHttp:
        service: ext-authz.authz.local
        port: 8000
        includeRequestHeadersInCheck: [x-ext-authz]
        headersToUpstreamOnAllow: [x-ext-authz-check-result]
        headersToDownstreamOnDeny: [x-ext-authz-check-result]
"""


@dataclass
class World:
    config: ConfigEnv
    citadel: Citadel
    base: Path
    server: Proxy
    gateway: Proxy
    grpc_authz: ExtAuthzServer
    http_authz: HttpExtAuthzServer
    issuer: JwtIssuer
    jwks: JwksServer


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("authz")
    (base / "logs").mkdir()
    (base / "mesh").mkdir()
    (base / "config").mkdir()
    group = ProcessGroup(base / "logs")
    apps = [EchoServer("reviews", SERVER_IP, APP_PORT).start()]
    try:
        issuer = JwtIssuer("https://issuer.test")
        with StreamEchoServer("db", SERVER_IP) as db, ExtAuthzServer(AUTHZ_IP) as grpc_authz, \
                HttpExtAuthzServer(AUTHZ_IP) as http_authz, JwksServer(issuer, AUTHZ_IP) as jwks:
            nats = start_nats(group, base / "nats")
            mesh = Mesh(group, nats, base / "mesh")
            config = ConfigEnv.start(mesh, base / "config")
            citadel = start_citadel(group, nats.url, base / "citadel")
            # Nothing listens there: the authorizer that is down.
            config.apply("services", services(grpc_authz.port, http_authz.port, free_port()))
            config.apply("mesh", mesh_config())

            def sidecar(name: str, ip: str, account: str, **kwargs: Any) -> Proxy:
                return identity_sidecar(mesh, config.pilot, citadel, base, name, ip, account, wait_live=False,
                                        **kwargs)

            client = sidecar("productpage", CLIENT_IP, "bookinfo-productpage", labels={"app": "productpage"})
            server = sidecar("reviews", SERVER_IP, "bookinfo-reviews", labels={"app": "reviews", "version": "v1"},
                             app_ports={9080: APP_PORT, 5432: db.port})
            gateway = config.mesh.proxy(config.pilot, name="ingressgateway", node_type="router",
                                        namespace="istio-system", bind_address=GATEWAY_IP,
                                        labels={"istio": "ingressgateway"}, wait_live=False)
            config.add_proxies(client, server, gateway)
            yield World(config, citadel, base, server, gateway, grpc_authz, http_authz, issuer, jwks)
    finally:
        for app in apps:
            app.stop()
        group.stop_all()


@pytest.fixture
def world_config(world: World) -> Iterator[World]:
    """The module's world; policies a test applies are removed after it."""
    keep = world.config.checkpoint()
    try:
        yield world
    finally:
        world.config.clear(keep)


def via_productpage(path: str = "/", **headers: str) -> httpx.Response:
    """From the productpage workload through its sidecar: mTLS as bookinfo-productpage."""
    return via_http_proxy(f"{CLIENT_IP}:15001").get(f"http://reviews:9080{path}", headers=headers)


def peer(world: World, account: str, namespace: str = "default") -> ClientCert:
    """A certificate from citadel for `account`, to call the server's sidecar as that workload."""
    return client_from_citadel(world.base, f"{namespace}-{account}", world.citadel.address, world.citadel.root_pem,
                               world.citadel.token(namespace, account), SpiffeId("cluster.local", namespace, account))


def as_workload(world: World, cert: ClientCert, path: str = "/", method: str = "GET") -> httpx.Response:
    context = ssl.create_default_context(cafile=str(world.citadel.root_file))
    context.check_hostname = False  # workload certificates carry a SPIFFE id, no DNS name
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    with httpx.Client(verify=context, timeout=10) as client:
        return client.request(method, f"https://{SERVER_IP}:9080{path}")


def plaintext(path: str = "/", method: str = "GET", source: str = OUTSIDE_IP, **headers: str) -> httpx.Response:
    """Straight to the server's sidecar without mTLS, from `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.request(method, f"http://{SERVER_IP}:9080{path}", headers=headers)


def via_gateway(path: str = "/", **headers: str) -> httpx.Response:
    return HTTP.get(f"http://{GATEWAY_IP}:{GATEWAY_PORT}{path}", headers=headers, timeout=10)


def tcp_exchange(source: str = OUTSIDE_IP) -> bytes:
    """One round trip to the server's TCP port; b"" when Envoy closes the connection instead."""
    with socket.create_connection((SERVER_IP, 5432), timeout=5, source_address=(source, 0)) as conn:
        conn.sendall(b"hello database")  # TLS detection needs five bytes or more
        try:
            return conn.recv(100)
        except ConnectionResetError:
            return b""


def policy(name: str, spec: str, *, namespace: str = "default", annotations: str = "") -> str:
    meta = f"name: {name}, namespace: {namespace}" + (f", annotations: {annotations}" if annotations else "")
    return f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{{meta}}}\nspec: {spec}\n"


def assert_denied(response: httpx.Response) -> None:
    assert (response.status_code, response.text) == (403, DENIED)


def test_allow_nothing_denies_everything_and_removing_it_restores_service(world_config: World) -> None:
    config = world_config.config
    assert via_productpage().status_code == 200
    config.apply("allow-nothing", policy("allow-nothing", "{}"))
    assert_denied(via_productpage())
    assert_denied(plaintext())
    assert tcp_exchange() == b""
    config.remove("allow-nothing")
    assert via_productpage().status_code == 200
    assert tcp_exchange() == b"db:hello database"
    assert config.nacks() == []


def test_namespace_wide_and_workload_policies(world_config: World) -> None:
    config = world_config.config
    # A policy in another namespace does not apply; one in the root namespace applies mesh-wide.
    config.apply("other-ns", policy("deny-all", "{action: DENY, rules: [{}]}", namespace="other"))
    assert via_productpage().status_code == 200
    config.apply("mesh-wide", policy("deny-posts", "{action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}",
                                     namespace="istio-system"))
    assert_denied(plaintext(method="POST"))
    assert plaintext().status_code == 200
    # A selector that names another workload leaves this one alone.
    config.apply("ratings-only", policy("ratings-only", "{selector: {matchLabels: {app: ratings}}, rules: [{}]}"))
    assert plaintext().status_code == 200
    config.apply("reviews-v2-only", policy("v2", "{selector: {matchLabels: {version: v2}}}"))
    assert plaintext().status_code == 200
    config.apply("reviews-v1-only", policy("v1", "{selector: {matchLabels: {app: reviews, version: v1}}}"))
    assert_denied(plaintext())


def test_principals_come_from_the_mtls_peer(world_config: World) -> None:
    config = world_config.config
    config.apply("reviews-viewer", policy("reviews-viewer", """{selector: {matchLabels: {app: reviews}}, rules: [{
        from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}],
        to: [{operation: {methods: [GET]}}]}]}"""))
    assert via_productpage().status_code == 200
    assert_denied(as_workload(world_config, peer(world_config, "bookinfo-ratings")))
    assert as_workload(world_config, peer(world_config, "bookinfo-productpage")).status_code == 200
    assert_denied(as_workload(world_config, peer(world_config, "bookinfo-productpage"), method="DELETE"))
    # Plaintext carries no identity at all.
    assert_denied(plaintext())
    config.apply("namespaces", policy("by-namespace", "{rules: [{from: [{source: {namespaces: [default]}}]}]}"))
    assert as_workload(world_config, peer(world_config, "bookinfo-ratings")).status_code == 200


def test_deny_beats_allow(world_config: World) -> None:
    config = world_config.config
    config.apply("allow-all", policy("allow-all", "{rules: [{}]}"))
    config.apply("deny-admin", policy("deny-admin", "{action: DENY, rules: [{to: [{operation: {paths: [/admin*]}}]}]}"))
    assert plaintext("/reviews/1").status_code == 200
    assert_denied(plaintext("/admin/users"))
    assert_denied(via_productpage("/admin"))
    # What the proxy enforces, as `istioctl x authz check` shows it: from pilot and from Envoy itself.
    admin = world_config.server.admin
    for source in (["reviews.default", "--pilot", config.pilot.monitoring],
                   ["--admin", admin.base.removeprefix("http://")]):
        shown = subprocess.run([sys.executable, "-m", "tools.mizzenctl", "x", "authz", "check", *source],
                               capture_output=True, text=True, timeout=60, check=True).stdout
        rows = [line.split() for line in shown.splitlines()]
        assert rows == [["ACTION", "AuthorizationPolicy", "RULES"], ["DENY", "deny-admin.default", "1"],
                        ["ALLOW", "allow-all.default", "1"]], shown


def test_not_paths_and_not_methods(world_config: World) -> None:
    config = world_config.config
    config.apply("not", policy("not", """{rules: [{to: [{operation: {notPaths: ["/private/*", "*.secret"],
        notMethods: [DELETE]}}]}]}"""))
    assert plaintext("/public").status_code == 200
    assert_denied(plaintext("/private/x"))
    assert_denied(plaintext("/a/b.secret"))
    assert_denied(plaintext("/public", method="DELETE"))
    # The query string is not part of the path a policy matches.
    assert plaintext("/public?x=/private/").status_code == 200


def test_header_conditions(world_config: World) -> None:
    config = world_config.config
    config.apply("when", policy("when", """{rules: [{when: [
        {key: "request.headers[x-team]", values: [blue, "green*"]},
        {key: "request.headers[x-env]", notValues: [prod]}]}]}"""))
    assert plaintext(**{"x-team": "blue"}).status_code == 200
    assert plaintext(**{"x-team": "greenish", "x-env": "dev"}).status_code == 200
    assert_denied(plaintext(**{"x-team": "red"}))
    assert_denied(plaintext(**{"x-team": "blue", "x-env": "prod"}))
    assert_denied(plaintext())


def test_source_ip_blocks(world_config: World) -> None:
    config = world_config.config
    config.apply("ips", policy("ips", f"""{{action: DENY,
        rules: [{{from: [{{source: {{ipBlocks: [{OUTSIDE_IP}/32]}}}}]}}]}}"""))
    assert_denied(plaintext(source=OUTSIDE_IP))
    assert plaintext(source="127.0.41.10").status_code == 200


def test_remote_ip_blocks_at_the_ingress_gateway_behind_a_trusted_proxy(world_config: World) -> None:
    config = world_config.config
    assert via_gateway().status_code == 200
    config.apply("ingress", policy("block-bad-client", """{selector: {matchLabels: {istio: ingressgateway}},
        action: DENY, rules: [{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}]}""", namespace="istio-system"))
    # numTrustedProxies: 1 -- the client is the last address the proxy in front of us appended.
    assert_denied(via_gateway(**{"x-forwarded-for": "203.0.113.7"}))
    assert via_gateway(**{"x-forwarded-for": "203.0.113.7, 198.51.100.1"}).status_code == 200
    assert via_gateway(**{"x-forwarded-for": "198.51.100.1"}).status_code == 200
    # The sidecars behind the gateway are not selected.
    assert plaintext().status_code == 200


def test_tcp_port_with_network_rbac(world_config: World) -> None:
    config = world_config.config
    assert tcp_exchange() == b"db:hello database"
    config.apply("tcp", policy("db-from-inside", """{selector: {matchLabels: {app: reviews}}, rules: [
        {from: [{source: {ipBlocks: [127.0.41.10/32]}}], to: [{operation: {ports: ["5432"]}}]},
        {to: [{operation: {methods: [GET]}}]}]}"""))
    # The second rule needs HTTP: on TCP it never matches, so only the first one admits.
    assert tcp_exchange(source=OUTSIDE_IP) == b""
    assert tcp_exchange(source="127.0.41.10") == b"db:hello database"
    # ... which pilot says, where Istio users look: proxy-status -v.
    shown = subprocess.run([sys.executable, "-m", "tools.mizzenctl", "proxy-status", "-v", "--pilot",
                            config.pilot.monitoring], capture_output=True, text=True, timeout=60, check=True).stdout
    assert ("WARNING: reviews.default: AuthorizationPolicy default/db-from-inside spec.rules[1]: methods is HTTP "
            "only, so on TCP ports this ALLOW rule never matches") in shown, shown
    # ... while on HTTP the second rule lets GETs in from anywhere.
    assert plaintext().status_code == 200
    config.apply("tcp-deny", policy("deny-writes", "{action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}"))
    # A DENY rule with only HTTP fields denies every TCP connection: more, never less.
    assert tcp_exchange(source="127.0.41.10") == b""


def test_dry_run_changes_nothing_but_is_counted(world_config: World) -> None:
    config = world_config.config
    stats = world_config.server.admin.stats

    def shadow_denied() -> int:
        return sum(v for k, v in stats(r"istio_dry_run_deny_\.shadow_denied").items() if k.startswith("http."))

    before = shadow_denied()
    config.apply("dry", policy("dry-deny", "{action: DENY, rules: [{to: [{operation: {paths: [/dry*]}}]}]}",
                               annotations='{"istio.io/dry-run": "true"}'))
    config.apply("mesh", mesh_config(access_log=world_config.base / "access.log"))
    try:
        assert plaintext("/dry-run").status_code == 200
        assert plaintext("/other").status_code == 200
        assert shadow_denied() == before + 1
        # The shadow result is in Envoy's access log too, for the format that asks for it.
        log = world_config.base / "access.log"
        wait_until(lambda: log.exists() and "/other" in log.read_text(), timeout=10, what="the access log lines")
        lines = log.read_text().splitlines()
        assert "/dry-run dry-run=denied" in lines and "/other dry-run=allowed" in lines, lines
    finally:
        config.apply("mesh", mesh_config())


def test_custom_sends_only_matching_requests_to_the_external_authorizer(world_config: World) -> None:
    config, authz = world_config.config, world_config.grpc_authz
    authz.clear()
    config.apply("custom", policy("ext", """{selector: {matchLabels: {app: reviews}}, action: CUSTOM,
        provider: {name: ext-grpc}, rules: [{to: [{operation: {paths: ["/checked/*"]}}]}]}"""))
    allowed = plaintext("/checked/a", **{"x-ext-authz": "allow"})
    assert allowed.status_code == 200
    assert allowed.json()["headers"]["x-ext-authz-check-result"] == "allowed"
    denied = plaintext("/checked/b", **{"x-ext-authz": "no"})
    assert (denied.status_code, denied.text) == (403, DENIED_BODY)
    assert plaintext("/free").status_code == 200
    assert [check.path for check in authz.checks] == ["/checked/a", "/checked/b"]


def test_custom_http_provider(world_config: World) -> None:
    config, authz = world_config.config, world_config.http_authz
    authz.clear()
    config.apply("custom", policy("ext", """{action: CUSTOM, provider: {name: ext-http},
        rules: [{to: [{operation: {methods: [POST]}}]}]}"""))
    allowed = plaintext("/p", method="POST", **{"x-ext-authz": "allow"})
    assert allowed.status_code == 200
    assert allowed.json()["headers"]["x-ext-authz-check-result"] == "allowed"
    denied = plaintext("/p", method="POST")
    assert (denied.status_code, denied.headers.get("x-ext-authz-check-result")) == (403, "denied")
    assert plaintext("/p").status_code == 200
    assert [(c.method, c.path) for c in authz.checks] == [("POST", "/p"), ("POST", "/p")]


def test_custom_fails_closed_or_open_as_configured(world_config: World) -> None:
    config = world_config.config
    config.apply("custom", policy("ext", """{action: CUSTOM, provider: {name: ext-dead},
        rules: [{to: [{operation: {paths: ["/checked/*"]}}]}]}"""))
    # The authorizer cannot be reached: matching requests get statusOnError (403), others pass.
    assert plaintext("/checked/x", **{"x-ext-authz": "allow"}).status_code == 403
    assert plaintext("/free").status_code == 200
    config.apply("mesh", mesh_config(fail_open=True))
    try:
        assert plaintext("/checked/x").status_code == 200
    finally:
        config.apply("mesh", mesh_config())


def request_authentication(world: World, *, extra: str = "") -> str:
    return f"""\
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: {world.issuer.issuer}
    jwksUri: {world.jwks.url}
    outputClaimToHeaders: [{{header: x-jwt-sub, claim: sub}}]
{extra}"""


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_jwt_valid_invalid_and_missing_tokens(world_config: World) -> None:
    config, issuer = world_config.config, world_config.issuer
    config.apply("jwt", request_authentication(world_config))
    good = plaintext(**bearer(issuer.token("alice")))
    assert good.status_code == 200
    assert good.json()["headers"]["x-jwt-sub"] == "alice"
    assert world_config.jwks.requests > 0, "Envoy fetched the keys from jwksUri itself"
    for bad in (issuer.forged_token("alice"), issuer.expired_token("alice"), "not-a-jwt",
                JwtIssuer("https://other.test").token("alice")):
        answer = plaintext(**bearer(bad))
        assert answer.status_code == 401, bad
    # Without a token, authentication alone lets the request through: policy decides.
    assert plaintext().status_code == 200


def test_request_principals_make_a_token_required(world_config: World) -> None:
    config, issuer = world_config.config, world_config.issuer
    config.apply("jwt", request_authentication(world_config))
    config.apply("require", policy("require-jwt", f"""{{selector: {{matchLabels: {{app: reviews}}}},
        rules: [{{from: [{{source: {{requestPrincipals: ["{issuer.issuer}/alice",
                                                        "{issuer.issuer}/carol*"]}}}}]}}]}}"""))
    assert_denied(plaintext())
    assert plaintext(**bearer(issuer.token("alice"))).status_code == 200
    assert plaintext(**bearer(issuer.token("carol-2"))).status_code == 200
    assert_denied(plaintext(**bearer(issuer.token("bob"))))
    assert plaintext(**bearer(issuer.forged_token("alice"))).status_code == 401


def test_claim_and_audience_conditions(world_config: World) -> None:
    config, issuer = world_config.config, world_config.issuer
    config.apply("jwt", request_authentication(world_config))
    config.apply("claims", policy("claims", """{rules: [{when: [
        {key: "request.auth.claims[groups]", values: [admin]},
        {key: "request.auth.claims[org][team]", values: [blue]},
        {key: "request.auth.audiences", values: [mizzen]}]}]}"""))
    token = issuer.token("dave", audience=["mizzen", "other"], claims={"groups": ["dev", "admin"],
                                                                       "org": {"team": "blue"}})
    assert plaintext(**bearer(token)).status_code == 200
    single = issuer.token("erin", audience="mizzen", claims={"groups": "admin", "org": {"team": "blue"}})
    assert plaintext(**bearer(single)).status_code == 200
    for claims in ({"groups": ["dev"], "org": {"team": "blue"}}, {"groups": ["admin"], "org": {"team": "red"}}):
        assert_denied(plaintext(**bearer(issuer.token("frank", audience="mizzen", claims=claims))))
    assert_denied(plaintext(**bearer(issuer.token("gina", audience="else", claims={"groups": ["admin"],
                                                                                   "org": {"team": "blue"}}))))
    assert_denied(plaintext())


def test_inline_jwks_and_token_locations(world_config: World) -> None:
    config = world_config.config
    other = JwtIssuer("other-issuer")
    config.apply("jwt", request_authentication(world_config, extra=f"""\
  - issuer: {other.issuer}
    jwks: '{other.jwks_json()}'
    fromHeaders: [{{name: x-token}}]
    fromParams: [tok]
    forwardOriginalToken: true
"""))
    token = other.token("henry")
    by_header = plaintext(**{"x-token": token})
    assert by_header.status_code == 200 and by_header.json()["headers"]["x-token"] == token
    assert plaintext(f"/?tok={token}").status_code == 200
    assert plaintext(**{"x-token": other.forged_token("henry")}).status_code == 401


def test_custom_timeout_answers_with_the_provider_status_on_error(world_config: World) -> None:
    config, authz = world_config.config, world_config.grpc_authz
    released = threading.Event()
    # The authorizer would allow, but only once the test lets it: after Envoy gave up on it.
    authz.set_rule(lambda check: released.wait(30))
    try:
        config.apply("custom", policy("ext", """{action: CUSTOM, provider: {name: ext-slow},
            rules: [{to: [{operation: {paths: ["/slow/*"]}}]}]}"""))
        assert plaintext("/slow/x").status_code == 503
        assert plaintext("/fast").status_code == 200
    finally:
        released.set()
        authz.set_rule(None)


def test_a_principal_written_with_spiffe_never_matches_and_is_reported(world_config: World) -> None:
    config = world_config.config
    config.apply("spiffe", policy("spiffe-viewer", """{selector: {matchLabels: {app: reviews}}, rules: [{
        from: [{source: {principals: [spiffe://cluster.local/ns/default/sa/bookinfo-productpage]}}]}]}"""))
    # Istio adds the prefix itself, so this asks for spiffe://spiffe://...: nobody has it.
    assert_denied(via_productpage())
    shown = subprocess.run([sys.executable, "-m", "tools.mizzenctl", "proxy-status", "-v", "--pilot",
                            config.pilot.monitoring], capture_output=True, text=True, timeout=60, check=True).stdout
    assert ("WARNING: reviews.default: AuthorizationPolicy default/spiffe-viewer spec.rules[0].from[0].source."
            "principals: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage' starts with spiffe://") in shown, \
        shown


def test_jwt_payload_to_header(world_config: World) -> None:
    config, issuer = world_config.config, world_config.issuer
    config.apply("jwt", request_authentication(world_config).replace(
        "    outputClaimToHeaders:", "    outputPayloadToHeader: x-jwt-payload\n    outputClaimToHeaders:"))
    answer = plaintext(**bearer(issuer.token("ivan", claims={"team": "blue"})))
    assert answer.status_code == 200
    payload = json.loads(b64url_decode(answer.json()["headers"]["x-jwt-payload"]))
    assert (payload["sub"], payload["team"], payload["iss"]) == ("ivan", "blue", issuer.issuer)


Outcome = Callable[[World], "httpx.Response | bytes"]


@dataclass(frozen=True)
class Attribute:
    """One source, operation or condition field, shown to match one request and not another."""

    spec: str
    allowed: Outcome
    denied: Outcome
    namespace: str = "default"
    jwt: bool = False


def _outcome(result: httpx.Response | bytes) -> str:
    if isinstance(result, bytes):
        return {b"db:hello database": "allowed", b"": "denied"}.get(result, repr(result))
    if result.status_code == 200:
        return "allowed"
    return "denied" if (result.status_code, result.text) == (403, DENIED) else f"{result.status_code} {result.text}"


def _token(world: World, sub: str, **claims: str) -> httpx.Response:
    return plaintext(**bearer(world.issuer.token(sub, claims=claims or None)))


_GATEWAY = "{selector: {matchLabels: {istio: ingressgateway}}, "
_PRODUCTPAGE = "cluster.local/ns/default/sa/bookinfo-productpage"
_SNI = "outbound_.9080_._.reviews.default.svc.cluster.local"

ATTRIBUTES = {
    "when source.ip": Attribute(
        '{action: DENY, rules: [{when: [{key: source.ip, values: ["127.0.41.9/32"]}]}]}',
        lambda w: plaintext(source="127.0.41.10"), lambda w: plaintext(source=OUTSIDE_IP)),
    "notIpBlocks": Attribute(
        '{rules: [{from: [{source: {notIpBlocks: ["127.0.41.9"]}}]}]}',
        lambda w: plaintext(source="127.0.41.10"), lambda w: plaintext(source=OUTSIDE_IP)),
    "when remote.ip": Attribute(
        _GATEWAY + 'action: DENY, rules: [{when: [{key: remote.ip, values: ["203.0.113.0/24"]}]}]}',
        lambda w: via_gateway(**{"x-forwarded-for": "198.51.100.1"}),
        lambda w: via_gateway(**{"x-forwarded-for": "203.0.113.7"}), namespace="istio-system"),
    "notRemoteIpBlocks": Attribute(
        _GATEWAY + 'rules: [{from: [{source: {notRemoteIpBlocks: ["203.0.113.0/24"]}}]}]}',
        lambda w: via_gateway(**{"x-forwarded-for": "198.51.100.1"}),
        lambda w: via_gateway(**{"x-forwarded-for": "203.0.113.7"}), namespace="istio-system"),
    "when source.namespace": Attribute(
        "{rules: [{when: [{key: source.namespace, values: [default]}]}]}",
        lambda w: as_workload(w, peer(w, "bookinfo-ratings")),
        lambda w: as_workload(w, peer(w, "bookinfo-ratings", namespace="other"))),
    "notNamespaces": Attribute(
        "{rules: [{from: [{source: {notNamespaces: [other]}}]}]}",
        lambda w: as_workload(w, peer(w, "bookinfo-ratings")),
        lambda w: as_workload(w, peer(w, "bookinfo-ratings", namespace="other"))),
    "when source.principal": Attribute(
        f"{{rules: [{{when: [{{key: source.principal, values: [{_PRODUCTPAGE}]}}]}}]}}",
        lambda w: via_productpage(), lambda w: as_workload(w, peer(w, "bookinfo-ratings"))),
    "notPrincipals": Attribute(
        "{rules: [{from: [{source: {notPrincipals: [cluster.local/ns/default/sa/bookinfo-ratings]}}]}]}",
        lambda w: via_productpage(), lambda w: as_workload(w, peer(w, "bookinfo-ratings"))),
    "when request.auth.principal": Attribute(
        '{rules: [{when: [{key: request.auth.principal, values: ["https://issuer.test/alice"]}]}]}',
        lambda w: _token(w, "alice"), lambda w: _token(w, "bob"), jwt=True),
    "notRequestPrincipals": Attribute(
        '{rules: [{from: [{source: {notRequestPrincipals: ["https://issuer.test/bob"]}}]}]}',
        lambda w: _token(w, "alice"), lambda w: _token(w, "bob"), jwt=True),
    "when request.auth.presenter": Attribute(
        "{rules: [{when: [{key: request.auth.presenter, values: [web-app]}]}]}",
        lambda w: _token(w, "alice", azp="web-app"), lambda w: _token(w, "alice", azp="cli"), jwt=True),
    # Denied only where both hold: the server's own address and the probe header.  The second
    # rule would deny everything if destination.ip matched any address.
    "when destination.ip": Attribute(
        """{action: DENY, rules: [
            {when: [{key: destination.ip, values: ["127.0.41.2/32"]},
                    {key: "request.headers[x-probe]", values: [deny]}]},
            {when: [{key: destination.ip, values: ["10.0.0.0/8"]}]}]}""",
        lambda w: plaintext(), lambda w: plaintext(**{"x-probe": "deny"})),
    "when destination.port": Attribute(
        '{rules: [{when: [{key: destination.port, values: ["9080"]}]}]}',
        lambda w: plaintext(), lambda w: tcp_exchange()),
    "notPorts": Attribute(
        '{rules: [{to: [{operation: {notPorts: ["9080"]}}]}]}',
        lambda w: tcp_exchange(), lambda w: plaintext()),
    "when connection.sni": Attribute(
        f"{{rules: [{{when: [{{key: connection.sni, values: [{_SNI}]}}]}}]}}",
        lambda w: via_productpage(), lambda w: as_workload(w, peer(w, "bookinfo-productpage"))),
    "hosts": Attribute(
        '{rules: [{to: [{operation: {hosts: ["reviews:9080"]}}]}]}',
        lambda w: via_productpage(), lambda w: plaintext()),
    "notHosts": Attribute(
        '{rules: [{to: [{operation: {notHosts: ["reviews*"]}}]}]}',
        lambda w: plaintext(), lambda w: via_productpage()),
    "paths presence": Attribute(
        '{rules: [{to: [{operation: {paths: ["*"], methods: [GET]}}]}]}',
        lambda w: plaintext("/any/path"), lambda w: plaintext("/any/path", method="POST")),
}


@pytest.mark.parametrize("field", list(ATTRIBUTES))
def test_each_attribute_matches_what_it_names(world_config: World, field: str) -> None:
    case, config = ATTRIBUTES[field], world_config.config
    if case.jwt:
        config.apply("jwt", request_authentication(world_config))
    assert (_outcome(case.allowed(world_config)), _outcome(case.denied(world_config))) == ("allowed", "allowed")
    config.apply("attribute", policy("attribute", case.spec, namespace=case.namespace))
    assert (_outcome(case.allowed(world_config)), _outcome(case.denied(world_config))) == ("allowed", "denied")
