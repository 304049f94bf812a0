"""Mutual TLS between sidecars with SPIFFE identities from citadel, shaped by
PeerAuthentication and DestinationRule, through real Envoys and real handshakes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.pki import SpiffeId
from samples.echo import EchoServer
from tests.harness.citadel import Citadel, identity_args, identity_sidecar, start_citadel
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP, via_http_proxy
from tests.harness.identity import ThrowawayCa, client_from_citadel, mtls_get, spiffe_uris
from tests.harness.mesh import Mesh, Proxy
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup

pytestmark = pytest.mark.integration

CLIENT_IP, SERVER_IP, PLAIN_IP = "127.0.40.1", "127.0.40.2", "127.0.40.3"
APP_PORT = 19080

SERVICES = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: default, labels: {{security.istio.io/tlsMode: istio}}}}
spec:
  address: {SERVER_IP}
  labels: {{app: reviews}}
  serviceAccount: bookinfo-reviews
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: legacy, namespace: default}}
spec:
  hosts: [legacy.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints: [{{address: {PLAIN_IP}, ports: {{http: {APP_PORT}}}}}]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConfigEnv, Citadel, Path]]:
    base = tmp_path_factory.mktemp("mtls")
    (base / "logs").mkdir()
    group = ProcessGroup(base / "logs")
    try:
        nats = start_nats(group, base / "nats")
        (base / "mesh").mkdir()
        mesh = Mesh(group, nats, base / "mesh")
        config = base / "config"
        config.mkdir()
        citadel = start_citadel(group, nats.url, base / "citadel")
        yield ConfigEnv.start(mesh, config), citadel, base
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def mesh_up(env: tuple[ConfigEnv, Citadel, Path]) -> Iterator[dict[str, object]]:
    config, citadel, base = env
    apps = {"reviews": EchoServer("reviews", SERVER_IP, APP_PORT).start(),
            "legacy": EchoServer("legacy", PLAIN_IP, APP_PORT).start()}
    config.apply("services", SERVICES)

    def sidecar(name: str, ip: str, account: str, **kwargs: Any) -> Proxy:
        return identity_sidecar(config.mesh, config.pilot, citadel, base, name, ip, account, wait_live=False,
                                **kwargs)

    proxies = {
        "client": sidecar("productpage", CLIENT_IP, "bookinfo-productpage", labels={"app": "productpage"}),
        "server": sidecar("reviews", SERVER_IP, "bookinfo-reviews", labels={"app": "reviews"},
                          app_ports={9080: APP_PORT}),
    }
    config.add_proxies(*proxies.values())
    yield {"apps": apps, "proxies": proxies, "citadel": citadel, "base": base}
    for app in apps.values():
        app.stop()


def via_client(url: str) -> httpx.Response:
    return via_http_proxy(f"{CLIENT_IP}:15001").get(url)


def mesh_policy(mode: str) -> str:
    return f"""\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec:
  mtls: {{mode: {mode}}}
"""


def test_sidecars_talk_mtls_and_the_app_sees_the_client_identity(
        env: tuple[ConfigEnv, Citadel, Path], mesh_up: dict[str, object]) -> None:
    config = env[0]
    response = via_client("http://reviews:9080/reviews/0")
    assert response.status_code == 200, response.text
    xfcc = response.json()["headers"].get("x-forwarded-client-cert", "")
    assert "URI=spiffe://cluster.local/ns/default/sa/bookinfo-productpage" in xfcc
    # The client sidecar verified the server as the service's account (and used TLS for it).
    stats = mesh_up["proxies"]["client"].admin.stats("ssl")  # type: ignore[index]
    assert any(name.endswith("ssl.handshake") and value > 0 and "reviews" in name for name, value in stats.items())
    # An endpoint without a sidecar is reached in plaintext (auto-mTLS).
    assert via_client("http://legacy:9080/").headers["x-upstream"] == "legacy"
    assert config.nacks() == []


def test_strict_refuses_plaintext_permissive_serves_both(
        env: tuple[ConfigEnv, Citadel, Path], mesh_up: dict[str, object]) -> None:
    config = env[0]
    direct = f"http://{SERVER_IP}:9080/"
    assert HTTP.get(direct, timeout=5).status_code == 200, "PERMISSIVE (the default) serves plaintext"
    config.apply("peer-authn", mesh_policy("STRICT"))
    with pytest.raises(httpx.HTTPError):
        HTTP.get(direct, timeout=5)
    assert via_client("http://reviews:9080/").status_code == 200
    config.apply("peer-authn", mesh_policy("PERMISSIVE"))
    assert HTTP.get(direct, timeout=5).status_code == 200
    assert via_client("http://reviews:9080/").status_code == 200
    config.remove("peer-authn")


def test_a_certificate_from_another_root_is_refused(
        env: tuple[ConfigEnv, Citadel, Path], mesh_up: dict[str, object], tmp_path: Path) -> None:
    config, citadel, _ = env
    identity = SpiffeId("cluster.local", "default", "intruder")
    foreign = ThrowawayCa().client(tmp_path, "intruder", identity)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        mtls_get(9080, foreign, citadel.root_file, host=SERVER_IP)
    genuine = client_from_citadel(tmp_path, "genuine", citadel.address, citadel.root_pem,
                                  citadel.token("default", "intruder"), identity)
    answer = mtls_get(9080, genuine, citadel.root_file, host=SERVER_IP)
    assert answer.status == 200
    assert spiffe_uris(answer.server_cert) == ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"]
    assert config.nacks() == []


def test_destination_rule_disable_sends_plaintext(
        env: tuple[ConfigEnv, Citadel, Path], mesh_up: dict[str, object]) -> None:
    config = env[0]
    config.apply("peer-authn", mesh_policy("STRICT"))
    config.apply("dr", """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: DISABLE}}
""")
    # The client now speaks plaintext to a STRICT server: refused.
    assert via_client("http://reviews:9080/").status_code in (502, 503)
    config.remove("dr")
    assert via_client("http://reviews:9080/").status_code == 200
    config.remove("peer-authn")



CAPTURED_IP = "127.0.40.4"


def test_strict_leaves_no_port_of_a_captured_workload_in_plain_text(
        env: tuple[ConfigEnv, Citadel, Path], mesh_up: dict[str, object]) -> None:
    """With iptables capture every inbound connection lands on virtualInbound (15006); one
    for a port no service declares takes the passthrough chain, which STRICT must guard as
    it does a declared port.  Here nothing redirects, so a connection made straight to 15006
    is such a connection (its original destination is 15006 itself)."""
    config, citadel, base = env
    token = citadel.token_file(base / "ratings.token", "default", "bookinfo-ratings")
    proxy = config.add_proxy(config.mesh.proxy(
        config.pilot, name="ratings", bind_address=CAPTURED_IP, interception="REDIRECT",
        service_account="bookinfo-ratings", labels={"app": "ratings"},
        extra=identity_args(citadel, token, sds_socket=base / "ratings.sock")))
    config.apply("peer-authn", mesh_policy("STRICT"))
    unmatched = f"listener.{CAPTURED_IP}_15006.no_filter_chain_match"
    before = proxy.admin.stats(unmatched).get(unmatched, 0)
    with socket.create_connection((CAPTURED_IP, 15006), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nhost: ratings\r\n\r\n")
        try:
            answer = plain.recv(1024)
        except ConnectionResetError:
            answer = b""  # closed with a reset: refused all the same
        assert answer == b"", f"Envoy answered a plaintext connection under STRICT: {answer!r}"
    assert proxy.admin.stats(unmatched)[unmatched] == before + 1
    config.remove("peer-authn")
