"""Credential stores and the rules for reading secrets: Istio's key names, the `-cacert`
fallback, the checks that keep bad PEM and mismatched keys away from Envoy, and the file
store's directory layout and change polling."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from services.agent.credentials import (
    Credential,
    ca_from,
    check_ca,
    check_credential,
    credential_from,
)
from services.agent.credentials_files import FileCredentialStore
from services.agent.credentials_kube import decode_data
from services.agent.errors import CredentialNotFound, InvalidCredential
from tests.harness.tls_certs import Issued, TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"), "credentials-ca")


@pytest.fixture(scope="module")
def issued(ca: TestCA) -> Issued:
    return ca.issue("web", dns=("web.example.com",))


def write(folder: Path, **files: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name.replace("_", ".")).write_bytes(content)
    return folder


# -- Istio's key names ----------------------------------------------------------------------

def test_generic_keys_win_over_tls_keys() -> None:
    data = {"cert": b"G-CERT", "key": b"G-KEY", "cacert": b"G-CA", "tls.crt": b"T-CERT", "tls.key": b"T-KEY"}
    assert credential_from(data, "s") == Credential(b"G-CERT", b"G-KEY", b"G-CA")
    assert credential_from({"tls.crt": b"C", "tls.key": b"K"}, "s") == Credential(b"C", b"K", None)
    assert credential_from({"tls.crt": b"C", "tls.key": b"K", "ca.crt": b"A"}, "s").ca_pem == b"A"
    assert ca_from({"ca.crt": b"A", "cacert": b"B"}, "s") == b"B"


@pytest.mark.parametrize(("data", "reason"), [
    ({"tls.crt": b"", "tls.key": b""}, "found keys 'tls.crt' and 'tls.key', but they were empty"),
    ({"cert": b"x"}, "without the expected keys (cert and key) or (tls.crt and tls.key); found: cert"),
    ({}, "found: no keys"),
])
def test_missing_keys_are_named(data: dict[str, bytes], reason: str) -> None:
    with pytest.raises(InvalidCredential) as caught:
        credential_from(data, "secret istio-system/web")
    assert caught.value.reason.endswith(reason)
    assert str(caught.value).startswith("secret istio-system/web: ")


def test_a_ca_needs_a_ca_key() -> None:
    with pytest.raises(InvalidCredential, match=re.escape("found key 'ca.crt', but it was empty")):
        ca_from({"ca.crt": b""}, "s")
    with pytest.raises(InvalidCredential, match=re.escape("expected keys cacert or ca.crt; found: tls.crt, tls.key")):
        ca_from({"tls.crt": b"c", "tls.key": b"k"}, "s")


# -- checks before Envoy sees anything ------------------------------------------------------

def test_a_matching_chain_and_key_pass(issued: Issued, ca: TestCA) -> None:
    leaf = check_credential(Credential(issued.cert_path.read_bytes(), issued.key_path.read_bytes(),
                                       ca.ca_path.read_bytes()), "kubernetes://web")
    assert leaf.serial_number == issued.cert.serial_number


def test_a_key_of_another_certificate_is_refused_without_showing_it(issued: Issued, ca: TestCA) -> None:
    other = ca.issue("other", dns=("other.example.com",))
    with pytest.raises(InvalidCredential, match="does not belong to the certificate") as caught:
        check_credential(Credential(issued.cert_path.read_bytes(), other.key_path.read_bytes(), None), "file-cert:x")
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.parametrize(("chain", "key", "reason"), [
    (b"not pem", None, "holds no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", None, "not a valid PEM certificate bundle"),
    (None, b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n", "not an unencrypted PEM private key"),
])
def test_garbage_pem_is_refused_with_the_secret_name(issued: Issued, chain: bytes | None, key: bytes | None,
                                                     reason: str) -> None:
    credential = Credential(chain or issued.cert_path.read_bytes(), key or issued.key_path.read_bytes(), None)
    with pytest.raises(InvalidCredential, match=reason) as caught:
        check_credential(credential, "kubernetes://web")
    assert caught.value.what == "kubernetes://web"
    assert "garbage" not in str(caught.value)


def test_ca_bundles(ca: TestCA, issued: Issued) -> None:
    assert check_ca(ca.ca_path.read_bytes() + issued.cert_path.read_bytes(), "file-root:x") == 3
    with pytest.raises(InvalidCredential, match="holds no PEM certificate"):
        check_ca(b"hello", "file-root:x")
    with pytest.raises(InvalidCredential, match="not base64"):
        check_ca(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", "file-root:x")
    with pytest.raises(InvalidCredential, match="no certificate of the CA bundle parses"):
        check_ca(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "file-root:x")


def test_the_system_bundle_passes_as_envoy_would_load_it() -> None:
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        pytest.skip("no system CA bundle on this host")
    assert check_ca(bundle.read_bytes(), "file-root:system") > 10


# -- the file store -------------------------------------------------------------------------

def test_file_store_reads_the_secret_layout(tmp_path: Path, issued: Issued, ca: TestCA) -> None:
    store = FileCredentialStore(tmp_path)
    write(tmp_path / "istio-system" / "web", tls_crt=issued.cert_path.read_bytes(),
          tls_key=issued.key_path.read_bytes(), ca_crt=ca.ca_path.read_bytes())
    credential = store.get("istio-system", "web")
    assert credential == Credential(issued.cert_path.read_bytes(), issued.key_path.read_bytes(),
                                    ca.ca_path.read_bytes())
    # The CA of web-cacert: no such secret, so web's own ca.crt (Istio's fallback)...
    assert store.get_ca("istio-system", "web-cacert") == ca.ca_path.read_bytes()
    # ...unless web-cacert exists, holding `cacert` (generic) alone.
    write(tmp_path / "istio-system" / "web-cacert", cacert=b"OTHER CA")
    assert store.get_ca("istio-system", "web-cacert") == b"OTHER CA"


def test_file_store_says_what_is_missing(tmp_path: Path) -> None:
    store = FileCredentialStore(tmp_path)
    with pytest.raises(CredentialNotFound, match=f"not found in credentials directory {tmp_path}"):
        store.get("istio-system", "web")
    with pytest.raises(CredentialNotFound, match="neither web-cacert nor web found"):
        store.get_ca("istio-system", "web-cacert")
    write(tmp_path / "istio-system" / "web", server_pem=b"x", README=b"y")
    with pytest.raises(InvalidCredential, match=re.escape("holds none of the files cert, key, cacert, tls.crt, "
                                                          "tls.key, ca.crt; found: README, server.pem")):
        store.get("istio-system", "web")


@pytest.mark.parametrize(("namespace", "name"), [("istio-system", ".."), ("..", "etc"), ("a/b", "c")])
def test_file_store_never_looks_outside_its_directory(tmp_path: Path, namespace: str, name: str) -> None:
    with pytest.raises(CredentialNotFound, match="refusing to look outside"):
        FileCredentialStore(tmp_path / "creds").get(namespace, name)


def test_file_store_polls_for_added_changed_and_removed_secrets(tmp_path: Path, issued: Issued) -> None:
    store = FileCredentialStore(tmp_path / "creds")
    seen: list[tuple[str, str]] = []
    store.subscribe(lambda namespace, name: seen.append((namespace, name)))
    assert store.poll() == []  # the directory does not even exist yet
    folder = write(tmp_path / "creds" / "istio-system" / "web", tls_crt=issued.cert_path.read_bytes())
    assert store.poll() == [("istio-system", "web")]
    assert store.poll() == []
    # Replacing a file (a new inode, as an atomic rename or kubelet's symlink swap makes)...
    staging = folder / ".tls.key.tmp"
    staging.write_bytes(issued.key_path.read_bytes())
    os.replace(staging, folder / "tls.key")
    assert store.poll() == [("istio-system", "web")]
    # ...or rewriting one in place (size and mtime change) both count.
    (folder / "tls.crt").write_bytes(issued.cert_path.read_bytes() + b"\n")
    assert store.poll() == [("istio-system", "web")]
    (folder / "tls.crt").unlink()
    (folder / "tls.key").unlink()
    folder.rmdir()
    assert store.poll() == [("istio-system", "web")]
    assert seen == [("istio-system", "web")] * 4


def test_kubernetes_secret_data_is_base64() -> None:
    secret = {"metadata": {"name": "web"}, "data": {"tls.crt": "Q0VSVA==", "tls.key": "not base64!"}}
    assert decode_data(secret) == {"tls.crt": b"CERT"}
