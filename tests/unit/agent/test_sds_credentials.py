"""Which secrets the agent serves to whom, and what happens while one is missing, invalid
or rotating: a real SecretStore, real files in a tmp dir, no Envoy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from services.agent.credentials_files import FileCredentialStore
from services.agent.sds_credentials import CredentialSecrets, ServePolicy
from services.agent.sds_secrets import SecretStore
from services.agent.trust import TrustBundle
from tests.harness.tls_certs import Issued, TestCA

NAMESPACE = "istio-system"
GATEWAY = ServePolicy(NAMESPACE, router=True, identity=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"), "sds-ca")


@pytest.fixture(scope="module")
def certs(ca: TestCA) -> tuple[Issued, Issued]:
    return ca.issue("one", dns=("web.example.com",)), ca.issue("two", dns=("web.example.com",))


class World:
    def __init__(self, directory: Path, policy: ServePolicy = GATEWAY, *, with_store: bool = True) -> None:
        self.directory = directory
        self.secrets = SecretStore(TrustBundle(60.0))
        self.store = FileCredentialStore(directory / "creds") if with_store else None
        self.credentials = CredentialSecrets(self.secrets, policy, self.store)
        self.pushes = 0
        self.secrets.subscribe(self._pushed)

    def _pushed(self) -> None:
        self.pushes += 1

    def credential(self, name: str, cert: Issued, ca: TestCA | None = None) -> Path:
        folder = self.directory / "creds" / NAMESPACE / name
        folder.mkdir(parents=True, exist_ok=True)
        replace(folder / "tls.crt", cert.cert_path.read_bytes())
        replace(folder / "tls.key", cert.key_path.read_bytes())
        if ca is not None:
            replace(folder / "ca.crt", ca.ca_path.read_bytes())
        return folder

    def served(self, name: str) -> secret_pb2.Secret | None:
        resource = self.secrets.resources.get(name)
        if resource is None:
            return None
        secret = secret_pb2.Secret()
        assert resource.packed.Unpack(secret)
        return secret


def replace(path: Path, content: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(content)
    os.replace(staging, path)


def test_a_gateway_credential_is_served_once_it_appears(tmp_path: Path, certs: tuple[Issued, Issued]) -> None:
    world = World(tmp_path)
    world.secrets.want("stream-1", frozenset({"kubernetes://web"}))
    assert world.served("kubernetes://web") is None
    assert world.credentials.unavailable == {
        "kubernetes://web": f"secret {NAMESPACE}/web: not found in credentials directory {tmp_path / 'creds'}"}
    world.credential("web", certs[0])
    assert world.store is not None
    world.store.poll()
    secret = world.served("kubernetes://web")
    assert secret is not None and secret.name == "kubernetes://web"
    assert secret.tls_certificate.certificate_chain.inline_bytes == certs[0].cert_path.read_bytes()
    assert secret.tls_certificate.private_key.inline_bytes == certs[0].key_path.read_bytes()
    assert world.credentials.unavailable == {}
    assert world.pushes == 1


def test_cacert_is_served_as_a_validation_context(tmp_path: Path, certs: tuple[Issued, Issued], ca: TestCA) -> None:
    world = World(tmp_path)
    world.credential("web", certs[0], ca)
    world.secrets.want("s", frozenset({"kubernetes://web", "kubernetes://web-cacert"}))
    secret = world.served("kubernetes://web-cacert")
    assert secret is not None
    assert secret.validation_context.trusted_ca.inline_bytes == ca.ca_path.read_bytes()


@pytest.mark.parametrize(("policy", "resource", "reason"), [
    (ServePolicy(NAMESPACE, router=False, identity=False), "kubernetes://web",
     "credentials are served to gateways (router proxies) only"),
    (GATEWAY, "kubernetes://default/web", "the secret is in namespace default; a gateway gets the credentials of "
                                          "its own namespace (istio-system) only"),
    (GATEWAY, "default", "the workload identity is off on this agent"),
    (GATEWAY, "configmap://x/y", "not a secret this agent serves"),
])
def test_what_a_proxy_may_not_have_stays_pending_with_a_reason(
        tmp_path: Path, certs: tuple[Issued, Issued], policy: ServePolicy, resource: str, reason: str) -> None:
    world = World(tmp_path, policy)
    world.credential("web", certs[0])
    world.secrets.want("s", frozenset({resource}))
    assert world.served(resource) is None
    assert reason in world.credentials.unavailable[resource]


def test_without_a_credential_source_credentials_wait(tmp_path: Path) -> None:
    world = World(tmp_path, with_store=False)
    world.secrets.want("s", frozenset({"kubernetes://web"}))
    assert "no credential source is configured" in world.credentials.unavailable["kubernetes://web"]


def test_certificate_files_rotate_and_a_half_written_pair_keeps_the_last_good(
        tmp_path: Path, certs: tuple[Issued, Issued]) -> None:
    cert, key = tmp_path / "gw.pem", tmp_path / "gw.key"
    replace(cert, certs[0].cert_path.read_bytes())
    replace(key, certs[0].key_path.read_bytes())
    world = World(tmp_path)
    name = f"file-cert:{cert}~{key}"
    world.secrets.want("s", frozenset({name}))
    first = world.secrets.resources[name].version
    assert world.credentials.poll_files() == []
    # The certificate is replaced before its key: served, this would make Envoy NACK.
    replace(cert, certs[1].cert_path.read_bytes())
    assert world.credentials.poll_files() == [name]
    assert world.secrets.resources[name].version == first
    assert "does not belong to the certificate" in world.credentials.problems[name]
    replace(key, certs[1].key_path.read_bytes())
    assert world.credentials.poll_files() == [name]
    secret = world.served(name)
    assert secret is not None
    assert secret.tls_certificate.certificate_chain.inline_bytes == certs[1].cert_path.read_bytes()
    assert world.pushes == 2
    # Deleting the files keeps what Envoy has; Envoy is told nothing.
    cert.unlink()
    assert world.credentials.poll_files() == [name]
    assert world.served(name) == secret
    assert world.pushes == 2


def test_a_missing_ca_file_appears_later(tmp_path: Path, ca: TestCA) -> None:
    world = World(tmp_path)
    path = tmp_path / "ca" / "root.pem"
    name = f"file-root:{path}"
    world.secrets.want("s", frozenset({name}))
    assert world.credentials.unavailable == {name: f"{name}: {path} does not exist"}
    path.parent.mkdir()
    replace(path, b"garbage")
    world.credentials.poll_files()
    assert "holds no PEM certificate" in world.credentials.unavailable[name]
    replace(path, ca.ca_path.read_bytes())
    world.credentials.poll_files()
    secret = world.served(name)
    assert secret is not None and secret.validation_context.trusted_ca.inline_bytes == ca.ca_path.read_bytes()


def test_secrets_no_stream_wants_are_dropped(tmp_path: Path, certs: tuple[Issued, Issued]) -> None:
    world = World(tmp_path)
    world.credential("web", certs[0])
    world.secrets.want("a", frozenset({"kubernetes://web"}))
    world.secrets.want("b", frozenset({"kubernetes://web"}))
    world.secrets.release("a")
    assert "kubernetes://web" in world.secrets.resources
    world.secrets.release("b")
    assert world.secrets.resources == {}
    assert world.credentials.wanted == frozenset()


def test_identity_secrets_are_left_to_the_identity(tmp_path: Path) -> None:
    world = World(tmp_path, ServePolicy(NAMESPACE, router=True, identity=True))
    world.secrets.want("s", frozenset({"default", "ROOTCA"}))
    assert world.credentials.wanted == frozenset()
    assert world.credentials.unavailable == {}
