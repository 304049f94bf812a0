"""Citadel rotates its own root under traffic, with real parts: nats-server, citadel, galley,
pilot on secure xDS, two sidecars (agents and Envoys) speaking mTLS with a new TLS handshake
for every request, and `mizzenctl x ca rotate --wait` driving it.  No request fails; the
new root is seen beside the old one in Envoy's ROOTCA, and at the end every certificate
(the sidecars', pilot's, citadel's own) hangs off the new root and the old one is gone."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from libs.pki import SpiffeId, fingerprint, load_certs
from samples.echo import EchoServer
from tests.harness.citadel import Citadel, identity_args, start_citadel
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.identity import client_from_citadel, envoy_certs, mtls_get, spiffe_uris
from tests.harness.mesh import Mesh, PilotService, Proxy
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CLIENT_IP, SERVER_IP, LATE_IP = "127.0.83.1", "127.0.83.2", "127.0.83.3"
APP_PORT = 19080
PILOT_NAME = "istiod.istio-system.svc"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
# Each phase lasts at least this long: the documented bound for holders that do not report
# (pilot's serving certificate follows citadel's root-cert.pem every 2 s).
MIN_PHASE_S = "5"

CONFIG = f"""\
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
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    tls: {{mode: ISTIO_MUTUAL}}
    # A new upstream connection, so a new mTLS handshake, for every request.
    connectionPool: {{http: {{maxRequestsPerConnection: 1}}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec:
  mtls: {{mode: STRICT}}
"""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths hold at most 107 bytes; pytest's tmp paths can be longer.
    path = Path(tempfile.mkdtemp(prefix="mz-rot-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class World:
    def __init__(self, mesh: Mesh, base: Path, sockets: Path) -> None:
        self.mesh, self.base, self.sockets = mesh, base, sockets
        self.citadel: Citadel = start_citadel(mesh.group, mesh.nats.url, base / "citadel",
                                              "--root-rotation-min-phase-s", MIN_PHASE_S,
                                              "--root-rotation-auto-fraction", "0")
        token = self.citadel.token_file(base / "pilot.token", "istio-system", "istio-pilot-service-account")
        self.tls_port = free_port()
        self.pilot: PilotService = mesh.pilot("--xds-tls-port", str(self.tls_port), "--citadel-address",
                                              self.citadel.address, "--citadel-root-cert", str(self.citadel.root_file),
                                              "--citadel-token-file", str(token))
        (base / "config").mkdir()
        self.config = ConfigEnv(mesh, base / "config", mesh.galley(base / "config"), self.pilot)

    def sidecar(self, name: str, ip: str, account: str, **kwargs: Any) -> Proxy:
        token = self.citadel.token_file(self.base / f"{name}.token", "default", account)
        args = identity_args(self.citadel, token, sds_socket=self.sockets / f"{name}.sock",
                             nats_url=self.mesh.nats.url,
                             extra=("--pilot-address", f"127.0.0.1:{self.tls_port}", "--pilot-tls",
                                    "--pilot-server-name", PILOT_NAME))
        return self.mesh.proxy(self.pilot, name=name, bind_address=ip, interception="NONE", service_account=account,
                               extra=args, **kwargs)

    def rotation(self) -> dict[str, Any]:
        return dict(HTTP.get(f"http://127.0.0.1:{self.citadel.monitoring_port}/ca/rotation", timeout=5).json())


def _get(client: httpx.Client) -> str | None:
    """One request through the client sidecar; None if it went well, else what went wrong."""
    try:
        response = client.get("http://reviews:9080/reviews/0")
    except httpx.HTTPError as exc:
        return repr(exc)
    if response.status_code != 200:
        return f"{response.status_code}: {response.text[:200]}"
    xfcc = response.json()["headers"].get("x-forwarded-client-cert", "")
    if f"URI={CLIENT_ID}" not in xfcc:
        return f"no mTLS client identity reached the app: {xfcc!r}"
    return None


class Traffic:
    """Requests through the client sidecar, back to back, until stopped."""

    def __init__(self) -> None:
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rotation-traffic")

    def _run(self) -> None:
        with httpx.Client(proxy=f"http://{CLIENT_IP}:15001", timeout=10) as client:
            while not self._stop.is_set():
                problem = _get(client)
                if problem is None:
                    self.ok += 1
                else:
                    self.failures.append(problem)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


class RootsSeen:
    """Which roots an Envoy held while the rotation ran (its /certs, sampled; every TLS
    context using ROOTCA lists it, so each sample is a set)."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.seen: list[frozenset[int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roots-seen")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                held = frozenset(envoy_certs(self.proxy.admin.base)["ca_cert"])
            except httpx.HTTPError:
                continue
            if not self.seen or self.seen[-1] != held:
                self.seen.append(held)

    def __enter__(self) -> RootsSeen:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _default_chain(proxy: Proxy) -> list[x509.Certificate]:
    """The certificate chain of the `default` secret Envoy holds (from its config dump)."""
    dump = HTTP.get(f"{proxy.admin.base}/config_dump", params={"resource": "dynamic_active_secrets"},
                    timeout=5).json()
    for entry in dump.get("configs", []):
        secret = entry.get("secret", {})
        if secret.get("name") == "default":
            data = secret["tls_certificate"]["certificate_chain"]["inline_bytes"]
            return load_certs(base64.b64decode(data))
    raise AssertionError(f"{proxy.node_id} holds no default secret")


def _events(log: str, event: str, match: Callable[[dict[str, Any]], bool]) -> list[str]:
    """Timestamps (ISO, UTC: they sort as times) of a process's JSON log events that match."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event and match(entry):
            found.append(str(entry["timestamp"]))
    return found


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(root)
    except Exception:
        return False
    return True


def test_the_root_rotates_under_mtls_traffic_with_no_failed_request(mesh: Mesh, tmp_path: Path,
                                                                    short_dir: Path) -> None:
    world = World(mesh, tmp_path, short_dir)
    app = EchoServer("reviews", SERVER_IP, APP_PORT).start()
    try:
        world.config.apply("reviews", CONFIG)
        client = world.config.add_proxy(world.sidecar("productpage", CLIENT_IP, "bookinfo-productpage",
                                                      labels={"app": "productpage"}))
        server = world.config.add_proxy(world.sidecar("reviews", SERVER_IP, "bookinfo-reviews",
                                                      labels={"app": "reviews"}, app_ports={9080: APP_PORT}))
        world.config.sync()
        with httpx.Client(proxy=f"http://{CLIENT_IP}:15001", timeout=10) as probe:
            wait_until(lambda: _get(probe) is None, timeout=30, what="mTLS from productpage to reviews")
        old_root = load_certs(world.citadel.root_pem)[0]
        before = world.rotation()
        assert before["phase"] == "stable" and before["roots"][0]["fingerprint"] == fingerprint(old_root)
        # Both agents report what their Envoy applied; citadel sees them before it begins.
        wait_until(lambda: world.rotation()["reporting_holders"] == 2, what="both proxies' trust reports")

        with Traffic() as traffic, RootsSeen(server) as seen:
            wait_until(lambda: traffic.ok >= 10 or traffic.failures, what="traffic before the rotation")
            rotate = subprocess.run(
                [sys.executable, "-m", "tools.mizzenctl", "x", "ca", "rotate", "--wait", "--timeout", "120",
                 "--poll-interval", "0.2", "--citadel", f"http://127.0.0.1:{world.citadel.monitoring_port}"],
                capture_output=True, text=True, timeout=150, check=False)
            assert rotate.returncode == 0, rotate.stdout + rotate.stderr
            count = traffic.ok
            wait_until(lambda: traffic.ok >= count + 10 or traffic.failures, what="traffic after the rotation")
        assert traffic.failures == [], traffic.failures[:5]
        assert traffic.ok >= 50, f"only {traffic.ok} requests ran through the rotation"
        assert "root rotation done" in rotate.stdout, rotate.stdout

        new_root = load_certs(world.citadel.root_pem)
        assert len(new_root) == 1 and fingerprint(new_root[0]) != fingerprint(old_root)
        new_root_cert = new_root[0]
        after = world.rotation()
        assert after["phase"] == "stable" and after["roots"][0]["fingerprint"] == fingerprint(new_root_cert)
        for step in ("begin", "switch", "drop"):
            assert world.citadel.metric(f'citadel_root_rotation_steps_total{{step="{step}"}}') == 1, step
        # The phases moved on what the proxies reported: citadel signed with the new root only
        # after both had reported their Envoy trusting it, and dropped the old one only after
        # both had reported presenting certificates from the new one.
        new_print = fingerprint(new_root_cert)[:16]
        switch_at, drop_at = (_events(world.citadel.process.log(), "root rotation step taken",
                                      lambda e, s=s: e.get("step") == s)[0] for s in ("switch", "drop"))
        for proxy in (client, server):
            log = proxy.process.log()
            trusted = _events(log, "trust report written", lambda e: new_print in e.get("trusted", []))
            moved = _events(log, "trust report written", lambda e: e.get("cert_roots") == [new_print])
            assert trusted and trusted[0] < switch_at, (proxy.node_id, trusted[:1], switch_at)
            assert moved and switch_at < moved[0] < drop_at, (proxy.node_id, moved[:1], switch_at, drop_at)

        # Envoy held the old root alone, then both, then the new one alone.
        old_serial, new_serial = old_root.serial_number, new_root_cert.serial_number
        assert seen.seen[0] == {old_serial}
        assert {old_serial, new_serial} in seen.seen, seen.seen
        assert seen.seen[-1] == {new_serial}, seen.seen

        # Every Envoy: ROOTCA holds the new root only, and its certificate hangs off it.
        for proxy in (client, server):
            held = envoy_certs(proxy.admin.base)
            assert set(held["ca_cert"]) == {new_serial}, (proxy.node_id, held)
            chain = _default_chain(proxy)
            assert set(held["cert_chain"]) == {chain[0].serial_number}, (proxy.node_id, held)
            assert _issued_by(chain[0], new_root_cert), proxy.node_id
        # What reviews' sidecar presents to a caller, checked against the new root alone.
        caller = client_from_citadel(tmp_path / "clients", "caller", world.citadel.address, world.citadel.root_pem,
                                     world.citadel.token("default", "caller"),
                                     SpiffeId("cluster.local", "default", "caller"))
        answer = mtls_get(9080, caller, world.citadel.root_file, host=SERVER_IP)
        assert answer.status == 200 and spiffe_uris(answer.server_cert) == [SERVER_ID]
        assert _issued_by(answer.server_cert, new_root_cert)
        # Pilot's secure xDS certificate moved too, and a proxy started now verifies it.
        pilot_cert = x509.load_pem_x509_certificate(
            ssl.get_server_certificate(("127.0.0.1", world.tls_port)).encode())
        assert _issued_by(pilot_cert, new_root_cert)
        late = world.sidecar("late", LATE_IP, "bookinfo-ratings", labels={"app": "ratings"})
        assert set(envoy_certs(late.admin.base)["ca_cert"]) == {new_serial}
        assert world.config.nacks() == []
    finally:
        app.stop()
