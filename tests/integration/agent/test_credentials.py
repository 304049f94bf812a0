"""Gateway credentials (`credentialName`) served by the agent over SDS to a real Envoy
gateway, with real TLS handshakes: from a credentials directory (the local mesh) and from
Kubernetes Secrets (the fake API server); rotation without failed requests, MUTUAL with a
`-cacert` secret, and a missing credential that leaves only its own server down."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.mesh import Mesh, Proxy
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.tls_certs import Issued, TestCA
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

NAMESPACE = "istio-system"  # the gateways' namespace: where their credentials live
HOSTS = ("bookinfo.example.com", "a.example.com", "b.example.com", "c.example.com", "k8s.example.com")
REFUSED = (ssl.SSLError, OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Pki:
    gateway_ca: TestCA
    certs: dict[str, Issued]
    client_ca: TestCA
    client: Issued
    stranger: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    gateway_ca, client_ca = TestCA(base / "gateway", "gateway-ca"), TestCA(base / "clients", "client-ca")
    certs = {name: gateway_ca.issue(name, dns=(host,)) for name, host in (
        ("bookinfo-1", "bookinfo.example.com"), ("bookinfo-2", "bookinfo.example.com"), ("a", "a.example.com"),
        ("b", "b.example.com"), ("c", "c.example.com"), ("k8s-1", "k8s.example.com"), ("k8s-2", "k8s.example.com"))}
    return Pki(gateway_ca, certs, client_ca, client_ca.issue("client", client=True),
               TestCA(base / "other", "other-ca").issue("stranger", client=True))


@dataclass
class World:
    env: ConfigEnv
    credentials: Path
    api: FakeKubeApiServer
    gateway: Proxy
    kube_gateway: Proxy
    work: Path


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("credentials")
    (base / "logs").mkdir()
    (base / "mesh").mkdir()
    (base / "config").mkdir()
    group = ProcessGroup(base / "logs")
    failed_before = request.session.testsfailed
    echo = EchoServer("echo").start()
    api = FakeKubeApiServer().start()
    try:
        nats = start_nats(group, base / "nats")
        mesh = Mesh(group, nats, base / "mesh")
        env = ConfigEnv.start(mesh, base / "config")
        env.apply("backends", service_entry("echo.default.svc.cluster.local", [Workload(echo, {"app": "echo"})]))
        env.apply("routes", ROUTES)
        credentials = base / "creds"
        gateway = mesh.proxy(
            env.pilot, name="ingressgateway", node_type="router", namespace=NAMESPACE,
            labels={"istio": "ingressgateway"}, wait_live=False,
            extra=("--credentials-dir", str(credentials), "--credentials-poll-interval-s", "0.05"))
        kube_gateway = mesh.proxy(
            env.pilot, name="k8s-gateway", node_type="router", namespace=NAMESPACE, labels={"istio": "k8s-ingress"},
            wait_live=False,
            extra=("--credentials-from-kubernetes", "--kubeconfig", str(api.write_kubeconfig(base / "kubeconfig"))))
        env.add_proxies(gateway, kube_gateway)
        yield World(env, credentials, api, gateway, kube_gateway, base)
    finally:
        group.stop_all()
        api.stop()
        echo.stop()
        if request.session.testsfailed > failed_before:
            print(group.logs())


@pytest.fixture
def config(world: World) -> Iterator[ConfigEnv]:
    keep = world.env.checkpoint()
    try:
        yield world.env
    finally:
        world.env.clear(keep)


ROUTES = f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{", ".join(HOSTS)}]
  gateways: [gw, k8s-gw]
  http: [{{route: [{{destination: {{host: echo}}}}]}}]
"""


def gateway_yaml(servers: str, *, name: str = "gw", selector: str = "ingressgateway") -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{istio: {selector}}}
  servers:
{servers}"""


def https_server(port: int, host: str, credential: str, mode: str = "SIMPLE") -> str:
    return f"""\
  - port: {{number: {port}, name: https-{port}-{host.split('.', maxsplit=1)[0]}, protocol: HTTPS}}
    hosts: [{host}]
    tls: {{mode: {mode}, credentialName: {credential}}}
"""


def write_credential(root: Path, name: str, cert: Issued | None = None, *, ca: TestCA | None = None,
                     generic: bool = False) -> None:
    """A secret-shaped directory, each file replaced atomically (as kubelet or `mv` would)."""
    folder = root / NAMESPACE / name
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file, ca_file = ("cert", "key", "cacert") if generic else ("tls.crt", "tls.key", "ca.crt")
    if cert is not None:
        replace(folder / cert_file, cert.cert_path.read_bytes())
        replace(folder / key_file, cert.key_path.read_bytes())
    if ca is not None:
        replace(folder / ca_file, ca.ca_path.read_bytes())


def replace(path: Path, content: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(content)
    staging.chmod(0o600)
    os.replace(staging, path)


@dataclass
class Answer:
    status: int
    upstream: str
    peer_cert: bytes


def https_get(port: int, sni: str, context: ssl.SSLContext) -> Answer:
    """GET / on a new TLS connection to the gateway; the client verifies the server's
    certificate against `context`'s CA and, with check_hostname, its SAN against `sni`."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = context.wrap_socket(raw, server_hostname=sni)
    connection = http.client.HTTPConnection(sni, port, timeout=10)
    connection.sock = tls
    try:
        connection.request("GET", "/", headers={"Host": sni})
        response = connection.getresponse()
        response.read()
        return Answer(response.status, response.getheader("x-upstream", ""), tls.getpeercert(binary_form=True) or b"")
    finally:
        connection.close()


def refused(port: int, sni: str, context: ssl.SSLContext) -> bool:
    try:
        https_get(port, sni, context)
    except REFUSED:
        return True
    return False


def agent_metric(proxy: Proxy, name: str) -> float:
    text = HTTP.get(f"http://127.0.0.1:{proxy.monitoring_port}/metrics", timeout=2).text
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#") and line.split("{")[0].split(" ")[0] == name)


def listener_states(proxy: Proxy, port: int) -> set[str]:
    """Which of active/warming a gateway listener has in Envoy right now."""
    dump = proxy.admin.config_dump("dynamic_listeners")
    for entry in dump["configs"]:
        if entry.get("name") == f"{proxy.bind_address}_{port}":
            return {state for state in ("active_state", "warming_state") if state in entry}
    return set()


def active_secrets(proxy: Proxy) -> set[str]:
    dump = proxy.admin.config_dump("dynamic_active_secrets")
    return {entry["name"] for entry in dump.get("configs", [])}


# -- from a credentials directory ------------------------------------------------------------

def test_a_credential_name_serves_https_with_that_secret(config: ConfigEnv, world: World, pki: Pki) -> None:
    write_credential(world.credentials, "bookinfo-credential", pki.certs["bookinfo-1"])
    port = free_port()
    config.apply("gateway", gateway_yaml(https_server(port, "bookinfo.example.com", "bookinfo-credential")))
    # The client trusts only the gateway CA and checks the certificate names bookinfo.example.com.
    # (Envoy opens the port once the listener has its secret, a moment after it ACKed.)
    answer = wait_until(lambda: https_get(port, "bookinfo.example.com", pki.gateway_ca.client_context()),
                        what="the HTTPS server")
    assert (answer.status, answer.upstream) == (200, "echo")
    assert answer.peer_cert == pki.certs["bookinfo-1"].der
    assert refused(port, "bookinfo.example.com", pki.client_ca.client_context())
    assert "kubernetes://bookinfo-credential" in active_secrets(world.gateway)
    assert config.nacks() == []


def test_replacing_the_files_rotates_the_certificate_without_failed_requests(
        config: ConfigEnv, world: World, pki: Pki) -> None:
    old, new = pki.certs["bookinfo-1"], pki.certs["bookinfo-2"]
    write_credential(world.credentials, "rotating-credential", old)
    port = free_port()
    config.apply("gateway", gateway_yaml(https_server(port, "bookinfo.example.com", "rotating-credential")))
    context = pki.gateway_ca.client_context()
    wait_until(lambda: https_get(port, "bookinfo.example.com", context), what="the HTTPS server")
    seen: list[bytes] = []  # each certificate presented, in order
    answers = [0]
    failures: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                answer = https_get(port, "bookinfo.example.com", context)
                assert answer.status == 200
            except BaseException as exc:
                failures.append(exc)
                return
            answers[0] += 1
            if not seen or seen[-1] != answer.peer_cert:
                seen.append(answer.peer_cert)

    worker = threading.Thread(target=traffic, name="https-traffic")
    worker.start()
    try:
        wait_until(lambda: seen or failures, what="the first answer")
        problems = agent_metric(world.gateway, "agent_sds_secret_problems_total")
        # Half a rotation: the new certificate beside the old key.  Served, Envoy would NACK
        # it; the agent keeps the old pair until the key follows.
        folder = world.credentials / NAMESPACE / "rotating-credential"
        replace(folder / "tls.crt", new.cert_path.read_bytes())
        wait_until(lambda: agent_metric(world.gateway, "agent_sds_secret_problems_total") > problems,
                   what="the agent to notice the mismatched pair")
        assert seen[-1] == old.der
        replace(folder / "tls.key", new.key_path.read_bytes())
        wait_until(lambda: seen[-1] == new.der or failures, what="handshakes to present the new certificate")
        count = answers[0]
        wait_until(lambda: answers[0] > count + 10 or failures, what="more requests after the rotation")
    finally:
        stop.set()
        worker.join(timeout=20)
    assert failures == []
    assert seen == [old.der, new.der]
    assert config.nacks() == []
    assert agent_metric(world.gateway, "agent_sds_nacks_total") == 0
    # The agent wrote no key anywhere and logged none (the credentials dir is the operator's).
    for path in [*(world.work / "mesh").rglob("*"), *(world.work / "logs").rglob("*")]:
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_mutual_verifies_clients_with_the_cacert_secret(config: ConfigEnv, world: World, pki: Pki) -> None:
    # Istio's generic secret keys (cert, key), and the client CA in a `<name>-cacert` secret.
    write_credential(world.credentials, "bookinfo-mtls", pki.certs["bookinfo-1"], generic=True)
    write_credential(world.credentials, "bookinfo-mtls-cacert", ca=pki.client_ca, generic=True)
    port = free_port()
    config.apply("gateway", gateway_yaml(https_server(port, "bookinfo.example.com", "bookinfo-mtls", "MUTUAL")))
    wait_until(lambda: listener_states(world.gateway, port) == {"active_state"}, what="the listener's secrets")
    assert refused(port, "bookinfo.example.com", pki.gateway_ca.client_context())
    assert refused(port, "bookinfo.example.com", pki.gateway_ca.client_context(cert=pki.stranger))
    answer = https_get(port, "bookinfo.example.com", pki.gateway_ca.client_context(cert=pki.client))
    assert answer.status == 200
    assert answer.peer_cert == pki.certs["bookinfo-1"].der
    assert {"kubernetes://bookinfo-mtls", "kubernetes://bookinfo-mtls-cacert"} <= active_secrets(world.gateway)
    assert config.nacks() == []


def test_a_missing_credential_leaves_only_its_server_down(config: ConfigEnv, world: World, pki: Pki) -> None:
    write_credential(world.credentials, "a-credential", pki.certs["a"])
    shared, alone = free_port(), free_port()
    context = pki.gateway_ca.client_context()
    servers = https_server(shared, "a.example.com", "a-credential")
    config.apply("gateway", gateway_yaml(servers + https_server(alone, "b.example.com", "b-credential")))
    # b's listener waits for its secret (Envoy: warming, its port not yet open); a serves.
    assert wait_until(lambda: https_get(shared, "a.example.com", context), what="a to serve").status == 200
    assert listener_states(world.gateway, alone) == {"warming_state"}
    assert refused(alone, "b.example.com", context)
    # A missing credential for a new server on a port that serves: the new listener version
    # waits, the old one keeps serving a.
    config.apply("gateway", gateway_yaml(servers + https_server(shared, "c.example.com", "c-credential")
                                         + https_server(alone, "b.example.com", "b-credential")))
    assert listener_states(world.gateway, shared) == {"active_state", "warming_state"}
    assert https_get(shared, "a.example.com", context).status == 200
    assert refused(shared, "c.example.com", context)
    assert agent_metric(world.gateway, "agent_sds_secrets_unavailable") == 2
    assert config.nacks() == []
    # The credentials appear: pushed, and both servers serve with their certificates.
    write_credential(world.credentials, "b-credential", pki.certs["b"])
    write_credential(world.credentials, "c-credential", pki.certs["c"])
    b = wait_until(lambda: https_get(alone, "b.example.com", context), what="b to serve")
    c = wait_until(lambda: https_get(shared, "c.example.com", context), what="c to serve")
    assert (b.peer_cert, c.peer_cert) == (pki.certs["b"].der, pki.certs["c"].der)
    assert https_get(shared, "a.example.com", context).peer_cert == pki.certs["a"].der
    assert agent_metric(world.gateway, "agent_sds_secrets_unavailable") == 0
    assert config.nacks() == []


# -- certificate files named in the config (file-cert:, file-root:) -------------------------

def file_server(port: int, host: str, cert: Path, key: Path) -> str:
    return f"""\
  - port: {{number: {port}, name: https-{port}, protocol: HTTPS}}
    hosts: [{host}]
    tls: {{mode: SIMPLE, serverCertificate: {cert}, privateKey: {key}}}
"""


def test_certificate_files_come_from_the_agent_missing_ones_wait_and_changes_are_pushed(
        config: ConfigEnv, world: World, pki: Pki, tmp_path: Path) -> None:
    working, waiting = free_port(), free_port()
    a_cert, a_key = pki.certs["a"].cert_path, pki.certs["a"].key_path
    b_cert, b_key = tmp_path / "later" / "b.pem", tmp_path / "later" / "b.key"
    config.apply("gateway", gateway_yaml(file_server(working, "a.example.com", a_cert, a_key)
                                         + file_server(waiting, "b.example.com", b_cert, b_key)))
    # Files Envoy read itself would make it reject the whole update; through SDS only the
    # listener naming the missing files waits.
    assert config.nacks() == []
    context = pki.gateway_ca.client_context()
    assert wait_until(lambda: https_get(working, "a.example.com", context), what="a to serve").peer_cert == (
        pki.certs["a"].der)
    assert listener_states(world.gateway, waiting) == {"warming_state"}
    assert f"file-cert:{a_cert}~{a_key}" in active_secrets(world.gateway)
    # The files appear, then change: the agent pushes both, no config change needed.
    b_cert.parent.mkdir()
    replace(b_key, pki.certs["b"].key_path.read_bytes())
    replace(b_cert, pki.certs["b"].cert_path.read_bytes())
    served = wait_until(lambda: https_get(waiting, "b.example.com", context), what="b's files to be served")
    assert served.peer_cert == pki.certs["b"].der
    rotated = pki.gateway_ca.issue("b-rotated", dns=("b.example.com",))
    replace(b_key, rotated.key_path.read_bytes())
    replace(b_cert, rotated.cert_path.read_bytes())
    wait_until(lambda: https_get(waiting, "b.example.com", context).peer_cert == rotated.der,
               what="the rewritten files to be served")
    assert config.nacks() == []


def warming_clusters(proxy: Proxy) -> set[str]:
    dump = proxy.admin.config_dump("dynamic_warming_clusters")
    return {entry["cluster"]["name"] for entry in dump.get("configs", [])}


def test_a_destination_rule_naming_a_missing_ca_file_leaves_its_cluster_warming(
        config: ConfigEnv, world: World, pki: Pki, tmp_path: Path) -> None:
    ca = tmp_path / "upstream-ca.pem"
    cluster = "outbound|80||echo.default.svc.cluster.local"
    seen_warming: list[set[str]] = []
    errors: list[BaseException] = []

    def provide_the_ca_once_envoy_waits_for_it() -> None:
        try:
            wait_until(lambda: agent_metric(world.gateway, "agent_sds_secrets_unavailable") >= 1,
                       what="Envoy to ask for the missing CA")
            seen_warming.append(warming_clusters(world.gateway))
            replace(ca, pki.gateway_ca.ca_path.read_bytes())
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=provide_the_ca_once_envoy_waits_for_it, name="ca-writer")
    writer.start()
    # Envoy reading the file itself would reject the whole CDS update.  Through SDS the
    # cluster is accepted and warms until its CA exists (at most initial_fetch_timeout, 15 s,
    # after which it refuses to connect); the CA appearing ends the wait.
    config.apply("dr", f"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo.default.svc.cluster.local
  trafficPolicy: {{tls: {{mode: SIMPLE, caCertificates: {ca}, sni: echo.example.com}}}}
""")
    writer.join(timeout=30)
    assert errors == []
    assert cluster in seen_warming[0]
    wait_until(lambda: cluster not in warming_clusters(world.gateway), what="the cluster to warm")
    assert f"file-root:{ca}" in active_secrets(world.gateway)
    assert config.nacks() == []
    assert agent_metric(world.gateway, "agent_sds_nacks_total") == 0


# -- from Kubernetes Secrets -----------------------------------------------------------------

def k8s_secret(name: str, namespace: str, cert: Issued) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": base64.b64encode(cert.cert_path.read_bytes()).decode(),
                     "tls.key": base64.b64encode(cert.key_path.read_bytes()).decode()}}


def test_kubernetes_secrets_of_the_gateway_namespace_are_served_and_followed(
        config: ConfigEnv, world: World, pki: Pki) -> None:
    world.api.create(k8s_secret("k8s-credential", NAMESPACE, pki.certs["k8s-1"]))
    # Another namespace's secret is never the gateway's, named plainly or with its namespace.
    world.api.create(k8s_secret("elsewhere", "default", pki.certs["k8s-1"]))
    port, other, explicit = free_port(), free_port(), free_port()
    config.apply("gateway", gateway_yaml(
        https_server(port, "k8s.example.com", "k8s-credential") + https_server(other, "k8s.example.com", "elsewhere")
        + https_server(explicit, "k8s.example.com", "default/elsewhere"), name="k8s-gw", selector="k8s-ingress"))
    context = pki.gateway_ca.client_context()
    answer = wait_until(lambda: https_get(port, "k8s.example.com", context), what="the HTTPS server")
    assert (answer.status, answer.peer_cert) == (200, pki.certs["k8s-1"].der)
    assert refused(other, "k8s.example.com", context)
    assert refused(explicit, "k8s.example.com", context)
    # kubectl edits the secret: the watch brings it, new handshakes present it.
    rtype = world.api.store.types[("", "secrets")]
    current = world.api.store.get(rtype, (NAMESPACE, "k8s-credential"))
    world.api.store.replace(rtype, (NAMESPACE, "k8s-credential"),
                            {**current, "data": k8s_secret("k8s-credential", NAMESPACE, pki.certs["k8s-2"])["data"]})
    wait_until(lambda: https_get(port, "k8s.example.com", context).peer_cert == pki.certs["k8s-2"].der,
               what="the edited secret to be served")
    assert agent_metric(world.kube_gateway, "agent_sds_secrets_unavailable") == 2
    assert config.nacks() == []
