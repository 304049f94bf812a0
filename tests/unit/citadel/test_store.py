"""Where the CA lives: a self-signed root persisted and reloaded; Istio's cacerts plugged in."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from libs.pki import SpiffeId, cert_pem, fingerprint, parse_key_type
from services.agent.identity import new_key_and_csr
from services.citadel.ca import CacertsStore, CertificateAuthority, FileCaStore, IssuancePolicy, check_csr
from services.citadel.errors import CaLoadError
from tests.harness.pki import make_ca, verify_client_chain, write_cacerts

NOW = dt.datetime.now(dt.UTC)
WORKLOAD = SpiffeId("cluster.local", "default", "web")


def _issue(ca: CertificateAuthority) -> list[str]:
    _, csr = new_key_and_csr("ec-p256", WORKLOAD)
    return list(ca.sign_workload(check_csr(csr), WORKLOAD, 3600).chain)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048", "rsa-4096"])
def test_self_signed_root_is_persisted_and_reloaded(tmp_path: Path, key_type: str) -> None:
    store = FileCaStore(tmp_path / "state")
    assert store.load(NOW) is None
    first = store.create(parse_key_type(key_type), "cluster.local", NOW)
    assert stat.S_IMODE((tmp_path / "state" / "root-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    again = FileCaStore(tmp_path / "state").create(parse_key_type("ec-p256"), "cluster.local", NOW)
    assert fingerprint(again.root) == fingerprint(first.root)
    assert again.signing_key.public_key() == first.signing_key.public_key()
    assert again.self_signed and again.intermediates == ()
    # A certificate from the reloaded CA verifies against the root written on first start.
    written = x509.load_pem_x509_certificate((tmp_path / "state" / "root-cert.pem").read_bytes())
    verify_client_chain(_issue(CertificateAuthority(again, IssuancePolicy())), [written])


def test_half_a_root_pair_is_an_error_not_a_new_root(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path)
    store.create(parse_key_type("ec-p256"), "cluster.local", NOW)
    (tmp_path / "root-key.pem").unlink()
    with pytest.raises(CaLoadError, match=r"root-key\.pem is missing but its pair exists"):
        store.create(parse_key_type("ec-p256"), "cluster.local", NOW)


def test_cacerts_intermediate_chain_verifies_to_the_plugged_root(tmp_path: Path) -> None:
    root = make_ca("root")
    middle = make_ca("middle", issuer=root)
    signing = make_ca("citadel", issuer=middle, key_type="rsa-2048")
    other_root = make_ca("next root")
    # Istio's cert-chain.pem lists the signing cert up to the root; root-cert.pem may hold
    # several roots while one is being rotated.
    directory = write_cacerts(tmp_path / "cacerts", signing, [signing[0], middle[0], root[0]],
                              [other_root[0], root[0]])
    bundle = CacertsStore(directory).load(NOW)
    assert not bundle.self_signed
    assert bundle.intermediates == (middle[0],)
    assert bundle.root == root[0]
    assert bundle.trusted_roots == (other_root[0], root[0])
    chain = _issue(CertificateAuthority(bundle, IssuancePolicy()))
    # Istio's order: leaf, signing cert, intermediates, root last.
    assert chain[1:] == [cert_pem(signing[0]), cert_pem(middle[0]), cert_pem(root[0])]
    verify_client_chain(chain, [root[0]])
    assert bundle.trust_bundle_pem() == cert_pem(other_root[0]) + cert_pem(root[0])


def test_cacerts_without_cert_chain_file_finds_the_root_directly(tmp_path: Path) -> None:
    root = make_ca("root")
    signing = make_ca("citadel", issuer=root)
    directory = write_cacerts(tmp_path, signing, [], [root[0]])
    (directory / "cert-chain.pem").unlink()
    bundle = CacertsStore(directory).load(NOW)
    verify_client_chain(_issue(CertificateAuthority(bundle, IssuancePolicy())), [root[0]])


@pytest.mark.parametrize(("breakage", "message"), [
    ("missing key", r"ca-key.pem is missing"),
    ("wrong key", r"the CA key does not belong to the CA certificate"),
    ("foreign root", r"the chain does not reach a root"),
    ("not a CA", r"is not a CA"),
    ("expired", r"expired at"),
    ("garbage", r"is not a valid PEM certificate bundle|holds no PEM certificate"),
])
def test_broken_cacerts_are_refused_with_the_reason(tmp_path: Path, breakage: str, message: str) -> None:
    root = make_ca("root")
    signing = make_ca("citadel", issuer=root)
    roots = [root[0]]
    if breakage == "wrong key":
        signing = (signing[0], make_ca("other")[1])
    if breakage == "foreign root":
        roots = [make_ca("stranger")[0]]
    if breakage == "expired":
        signing = make_ca("citadel", issuer=root, days=1, not_before=NOW - dt.timedelta(days=3))
    directory = write_cacerts(tmp_path, signing, [signing[0]], roots)
    if breakage == "missing key":
        (directory / "ca-key.pem").unlink()
    if breakage == "not a CA":
        leaf_key = parse_key_type("ec-p256").generate()
        leaf = CertificateAuthority(CacertsStore(directory).load(NOW), IssuancePolicy()).issue_serving(
            leaf_key.public_key(), ("localhost",), 3600).cert
        write_cacerts(directory, (leaf, leaf_key), [], [root[0]])
    if breakage == "garbage":
        (directory / "ca-cert.pem").write_text("not a certificate")
    with pytest.raises(CaLoadError, match=message):
        CacertsStore(directory).create(parse_key_type("ec-p256"), "cluster.local", NOW)
