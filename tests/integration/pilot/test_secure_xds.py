"""Secure xDS (Istio's 15012): a real Envoy takes config from pilot only over TLS with a
certificate citadel signed for pilot's DNS names; an impostor on the port, holding a
certificate for the same name from another CA, gets a failed handshake and feeds nothing."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.citadel import Citadel, identity_args, start_citadel
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.mesh import Mesh, PilotService, Proxy
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.tls_certs import TestCA
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

PROXY_IP = "127.0.47.1"
PILOT_NAME = "istiod.istio-system.svc"
SERVICE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
"""


@dataclass
class World:
    config: ConfigEnv
    citadel: Citadel
    pilot: PilotService
    tls_port: int
    base: Path
    mesh: Mesh


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("secure-xds")
    for folder in ("logs", "mesh", "config"):
        (base / folder).mkdir()
    group = ProcessGroup(base / "logs")
    try:
        nats = start_nats(group, base / "nats")
        mesh = Mesh(group, nats, base / "mesh")
        citadel = start_citadel(group, nats.url, base / "citadel")
        token = citadel.token_file(base / "pilot.token", "istio-system", "istio-pilot-service-account")
        tls_port = free_port()
        pilot = mesh.pilot("--xds-tls-port", str(tls_port), "--citadel-address", citadel.address,
                           "--citadel-root-cert", str(citadel.root_file), "--citadel-token-file", str(token))
        config = ConfigEnv(mesh, base / "config", mesh.galley(base / "config"), pilot)
        config.apply("service", SERVICE)
        yield World(config, citadel, pilot, tls_port, base, mesh)
    finally:
        group.stop_all()


def secure_proxy(world: World, name: str, port: int) -> Proxy:
    token = world.citadel.token_file(world.base / f"{name}.token", "default", "sleep")
    return world.mesh.proxy(world.pilot, name=name, bind_address=PROXY_IP, interception="NONE",
                            service_account="sleep", wait_live=False,
                            extra=(*identity_args(world.citadel, token, sds_socket=world.base / f"{name}.sock"),
                                   "--pilot-address", f"127.0.0.1:{port}", "--pilot-tls",
                                   "--pilot-server-name", PILOT_NAME))


def test_envoy_takes_config_only_from_pilots_certificate(world: World) -> None:
    proxy = secure_proxy(world, "sleep-v1", world.tls_port)
    wait_until(proxy.admin.ready, timeout=30, what="Envoy to be LIVE on config from the secure port")
    world.config.proxies.append(proxy)
    try:
        world.config.sync()
        stats = proxy.admin.stats(r"^cluster\.xds-grpc\.ssl\.")
        assert stats.get("cluster.xds-grpc.ssl.handshake", 0) >= 1
        assert stats.get("cluster.xds-grpc.ssl.fail_verify_error", 0) == 0
        # The config came through: the ServiceEntry's route is in Envoy.
        routes = HTTP.get(f"{proxy.admin.base}/config_dump", timeout=5).text
        assert "web.example.com" in routes
        # Pilot's certificate is citadel's, for pilot's names.
        certificate = ssl.get_server_certificate(("127.0.0.1", world.tls_port))
        assert "BEGIN CERTIFICATE" in certificate
        assert world.pilot.metric("pilot_serving_certs_total") >= 1
    finally:
        world.config.proxies.remove(proxy)
        proxy.process.stop()


class Impostor:
    """A TLS server on the xDS port with a certificate for pilot's name from another CA."""

    def __init__(self, base: Path) -> None:
        ca = TestCA(base / "impostor-ca", name="impostor")
        issued = ca.issue("istiod", dns=(PILOT_NAME,))
        self.context = ca.server_context(issued)
        self.context.set_alpn_protocols(["h2"])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(connection, server_side=True) as tls:
                    self.handshakes += 1
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.sock.close()


def test_an_impostor_on_the_port_feeds_nothing(world: World) -> None:
    impostor = Impostor(world.base)
    proxy = secure_proxy(world, "sleep-v2", impostor.port)
    try:
        wait_until(lambda: proxy.admin.stats(r"^cluster\.xds-grpc\.ssl\.fail_verify_error$").get(
            "cluster.xds-grpc.ssl.fail_verify_error", 0) >= 1, timeout=30, what="Envoy to refuse the impostor")
        assert impostor.handshakes == 0
        assert not proxy.admin.ready()
    finally:
        impostor.close()
        proxy.process.stop()
