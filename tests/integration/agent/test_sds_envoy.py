"""The agent's identity and SDS with real parts: citadel, NATS, pilot, and an Envoy whose
mTLS listener takes its certificate (`default`) and trust (`ROOTCA`) from the agent."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from libs.bus import MESH_TRUST, Bus, BusSettings
from libs.pki import SpiffeId
from tests.harness.citadel import Citadel, identity_args, start_citadel
from tests.harness.http import HTTP
from tests.harness.identity import (
    ClientCert,
    ThrowawayCa,
    client_from_citadel,
    envoy_certs,
    mtls_get,
    spiffe_uris,
    write_override,
)
from tests.harness.mesh import Mesh, PilotService, Proxy
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

WEB = SpiffeId("cluster.local", "default", "web")
CLIENT = SpiffeId("cluster.local", "default", "client")
REFUSED = (ssl.SSLError, OSError, http.client.HTTPException)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths hold at most 107 bytes; pytest's tmp paths can be longer.
    path = Path(tempfile.mkdtemp(prefix="mz-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class World:
    mesh: Mesh
    pilot: PilotService
    citadel: Citadel
    work: Path
    socket_dir: Path
    port: int = field(default_factory=free_port)

    def agent(self, name: str = "web", *extra: str, wait_live: bool = True, token_file: Path | None = None,
              trust_from_nats: bool = False) -> Proxy:
        token = token_file or self.citadel.token_file(self.work / f"{name}.token", "default", "web")
        args = identity_args(self.citadel, token, sds_socket=self.socket_dir / f"{name}.sock",
                             override=write_override(self.work / f"{name}-override.json", self.port),
                             nats_url=self.mesh.nats.url if trust_from_nats else "", extra=extra)
        return self.mesh.proxy(self.pilot, name=name, service_account="web", extra=args, wait_live=wait_live)

    def client(self) -> ClientCert:
        return client_from_citadel(self.work / "clients", "mesh-client", self.citadel.address,
                                   self.citadel.root_pem, self.citadel.token("default", "client"), CLIENT)

    def get(self, client: ClientCert) -> int:
        """One request on a new mTLS connection; the serial of the certificate Envoy presented."""
        answer = mtls_get(self.port, client, self.citadel.root_file)
        assert answer.status == 200 and answer.body == "ok"
        assert spiffe_uris(answer.server_cert) == [WEB.uri]
        return answer.server_cert.serial_number


@pytest.fixture
def world(mesh: Mesh, tmp_path: Path, short_dir: Path) -> World:
    work = tmp_path / "work"
    work.mkdir()
    return World(mesh, mesh.pilot(), start_citadel(mesh.group, mesh.nats.url, tmp_path / "citadel"), work, short_dir)


def _metric(proxy: Proxy, name: str) -> float:
    for line in HTTP.get(f"http://127.0.0.1:{proxy.monitoring_port}/metrics", timeout=2).text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    return 0.0


def _refused(world: World, client: ClientCert) -> bool:
    try:
        world.get(client)
    except REFUSED:
        return True
    return False


def test_envoy_serves_the_workload_identity_and_admits_only_mesh_clients(world: World) -> None:
    proxy = world.agent()
    client = world.client()
    serial = world.get(client)
    held = envoy_certs(proxy.admin.base)
    assert held["cert_chain"] == [serial]
    assert len(held["ca_cert"]) == 1

    stranger = ThrowawayCa().client(world.work / "clients", "stranger", CLIENT)
    with pytest.raises(REFUSED):
        world.get(stranger)
    listener_stat = f"listener.127.0.0.1_{world.port}.ssl.fail_verify_error"
    wait_until(lambda: proxy.admin.stats(listener_stat).get(listener_stat) == 1,
               what="Envoy to count the refused client certificate")
    assert world.get(client) == serial

    assert _metric(proxy, "agent_sds_nacks_total") == 0
    assert _metric(proxy, "agent_sds_acks_total") >= 2
    # The private key was never written: not by the agent, not into the bootstrap.
    for path in [*world.mesh.work_dir.rglob("*"), *world.socket_dir.rglob("*")]:
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_rotation_swaps_the_served_cert_while_requests_keep_succeeding(world: World) -> None:
    proxy = world.agent("web", "--cert-ttl-s", "4", "--cert-rotation-fraction", "0.5")
    client = world.client()
    serials: list[int] = []
    successes = [0]
    failures: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                serial = world.get(client)
            except BaseException as exc:
                failures.append(exc)
            else:
                successes[0] += 1
                if not serials or serials[-1] != serial:
                    serials.append(serial)

    worker = threading.Thread(target=traffic, name="mtls-traffic")
    worker.start()
    try:
        wait_until(lambda: len(serials) >= 3 or failures, timeout=30, what="two rotations seen in TLS handshakes")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert failures == [], failures[:3]
    assert successes[0] >= 20, "requests ran continuously through both rotations"
    assert len(set(serials)) == len(serials) >= 3
    assert envoy_certs(proxy.admin.base)["cert_chain"][0] in serials[-2:]
    assert _metric(proxy, "agent_workload_certs_obtained_total") >= 3
    assert _metric(proxy, "agent_sds_nacks_total") == 0


def _publish_bundle(nats_url: str, pem: bytes) -> None:
    async def put() -> None:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test")
        try:
            await (await bus.kv(MESH_TRUST)).put("cluster.local", pem)
        finally:
            await bus.close()

    asyncio.run(put())


def test_a_new_root_is_trusted_beside_the_old_one_until_retention_ends(world: World) -> None:
    proxy = world.agent("web", "--root-retention-s", "6", trust_from_nats=True)
    wait_until(lambda: "trust bundle received" in proxy.process.log(), what="the agent to read mesh-trust")
    client = world.client()
    new_ca = ThrowawayCa()
    new_client = new_ca.client(world.work / "clients", "new-root-client", CLIENT)
    assert _refused(world, new_client)

    # The mesh moves to a new root: the bundle now holds only the new one.
    _publish_bundle(world.mesh.nats.url, new_ca.root_pem.encode())
    wait_until(lambda: not _refused(world, new_client), what="Envoy to trust the new root")
    world.get(client)  # peers still holding certificates from the old root keep working
    assert len(envoy_certs(proxy.admin.base)["ca_cert"]) == 2
    # Our own certificate hangs off a root the bundle dropped: the agent renewed it at once.
    wait_until(lambda: _metric(proxy, "agent_workload_certs_obtained_total") >= 2, what="an early renewal")
    # Once the retention is over, the old root is gone.
    wait_until(lambda: _refused(world, client), timeout=30, what="the old root to leave Envoy's trust")
    assert envoy_certs(proxy.admin.base)["ca_cert"] == [new_ca.ca.bundle.root.serial_number]


def test_the_agent_waits_for_citadel_and_a_valid_token(world: World) -> None:
    citadel_port = world.citadel.grpc_port
    world.citadel.process.stop()
    token = world.work / "web.token"
    token.write_text(world.citadel.token("default", "web", now=0))  # expired since 1970
    proxy = world.agent("web", "--citadel-retry-max-s", "0.5", token_file=token, wait_live=False)

    wait_until(lambda: "citadel at 127.0.0.1" in proxy.process.log() and "unavailable" in proxy.process.log(),
               what="the agent to report citadel unavailable")
    restarted = start_citadel(world.mesh.group, world.mesh.nats.url, world.citadel.state_dir, name="citadel-2",
                              grpc_port=citadel_port)
    wait_until(lambda: "citadel refused the CSR (UNAUTHENTICATED): token expired" in proxy.process.log(),
               what="the agent to report the refused token")
    assert not proxy.admin.ready(), "Envoy must not go live without its certificate"
    assert proxy.process.alive()
    readyz = HTTP.get(f"http://127.0.0.1:{proxy.monitoring_port}/readyz", timeout=2).json()
    assert "workload-cert" in readyz["pending"]

    # A fresh token in the file is picked up on the next attempt.
    restarted.token_file(token, "default", "web")
    wait_until(proxy.admin.ready, timeout=30, what="Envoy LIVE once the certificate arrives")
    world.get(world.client())
