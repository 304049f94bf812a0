"""Where the CA lives: a self-signed root persisted and reloaded; Istio's cacerts plugged in."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from libs.pki import SpiffeId, cert_pem, fingerprint, parse_key_type
from services.agent.identity import new_key_and_csr
from services.citadel.ca import (
    CacertsStore,
    CertificateAuthority,
    FileCaStore,
    IssuancePolicy,
    bundle_from_secret,
    check_csr,
    secret_body,
    self_signed_root,
)
from services.citadel.errors import CaLoadError
from tests.harness.pki import make_ca, verify_client_chain, write_cacerts

NOW = dt.datetime.now(dt.UTC)
WORKLOAD = SpiffeId("cluster.local", "default", "web")


def _issue(ca: CertificateAuthority) -> list[str]:
    _, csr = new_key_and_csr("ec-p256", WORKLOAD)
    return list(ca.sign_workload(check_csr(csr), WORKLOAD, 3600).chain)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048", "rsa-4096"])
async def test_self_signed_root_is_persisted_and_reloaded(tmp_path: Path, key_type: str) -> None:
    store = FileCaStore(tmp_path / "state")
    assert await store.load(NOW) is None
    first = await store.create(parse_key_type(key_type), "cluster.local", NOW)
    assert stat.S_IMODE((tmp_path / "state" / "root-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    again = await FileCaStore(tmp_path / "state").create(parse_key_type("ec-p256"), "cluster.local", NOW)
    assert fingerprint(again.root) == fingerprint(first.root)
    assert again.signing_key.public_key() == first.signing_key.public_key()
    assert again.self_signed and again.intermediates == ()
    # A certificate from the reloaded CA verifies against the root written on first start.
    written = x509.load_pem_x509_certificate((tmp_path / "state" / "root-cert.pem").read_bytes())
    verify_client_chain(_issue(CertificateAuthority(again, IssuancePolicy())), [written])


async def test_half_a_root_pair_is_an_error_not_a_new_root(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path)
    await store.create(parse_key_type("ec-p256"), "cluster.local", NOW)
    (tmp_path / "root-key.pem").unlink()
    with pytest.raises(CaLoadError, match=r"root-key\.pem is missing but its pair exists"):
        await store.create(parse_key_type("ec-p256"), "cluster.local", NOW)


async def test_cacerts_intermediate_chain_verifies_to_the_plugged_root(tmp_path: Path) -> None:
    root = make_ca("root")
    middle = make_ca("middle", issuer=root)
    signing = make_ca("citadel", issuer=middle, key_type="rsa-2048")
    other_root = make_ca("next root")
    # Istio's cert-chain.pem lists the signing cert up to the root; root-cert.pem may hold
    # several roots while one is being rotated.
    directory = write_cacerts(tmp_path / "cacerts", signing, [signing[0], middle[0], root[0]],
                              [other_root[0], root[0]])
    bundle = await CacertsStore(directory).load(NOW)
    assert not bundle.self_signed
    assert bundle.intermediates == (middle[0],)
    assert bundle.root == root[0]
    assert bundle.trusted_roots == (other_root[0], root[0])
    chain = _issue(CertificateAuthority(bundle, IssuancePolicy()))
    # Istio's order: leaf, signing cert, intermediates, root last.
    assert chain[1:] == [cert_pem(signing[0]), cert_pem(middle[0]), cert_pem(root[0])]
    verify_client_chain(chain, [root[0]])
    # The bundle names the root citadel's chain ends at first, then the others.
    assert bundle.trust_bundle_pem() == cert_pem(root[0]) + cert_pem(other_root[0])


async def test_cacerts_without_cert_chain_file_finds_the_root_directly(tmp_path: Path) -> None:
    root = make_ca("root")
    signing = make_ca("citadel", issuer=root)
    directory = write_cacerts(tmp_path, signing, [], [root[0]])
    (directory / "cert-chain.pem").unlink()
    bundle = await CacertsStore(directory).load(NOW)
    verify_client_chain(_issue(CertificateAuthority(bundle, IssuancePolicy())), [root[0]])


@pytest.mark.parametrize(("breakage", "message"), [
    ("missing key", r"ca-key.pem is missing"),
    ("wrong key", r"the CA key does not belong to the CA certificate"),
    ("foreign root", r"the chain does not reach a root"),
    ("not a CA", r"is not a CA"),
    ("expired", r"expired at"),
    ("garbage", r"is not a valid PEM certificate bundle|holds no PEM certificate"),
])
async def test_broken_cacerts_are_refused_with_the_reason(tmp_path: Path, breakage: str, message: str) -> None:
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
        leaf = CertificateAuthority(await CacertsStore(directory).load(NOW), IssuancePolicy()).issue_serving(
            leaf_key.public_key(), ("localhost",), 3600).cert
        write_cacerts(directory, (leaf, leaf_key), [], [root[0]])
    if breakage == "garbage":
        (directory / "ca-cert.pem").write_text("not a certificate")
    with pytest.raises(CaLoadError, match=message):
        await CacertsStore(directory).create(parse_key_type("ec-p256"), "cluster.local", NOW)


def test_a_root_survives_the_round_trip_through_its_secret() -> None:
    root = self_signed_root(parse_key_type("ec-p256"), "cluster.local", now=NOW)
    secret = secret_body(root, "istio-ca-secret", "istio-system")
    assert secret["type"] == "istio.io/ca-root"
    assert set(secret["data"]) == {"ca-cert.pem", "ca-key.pem"}
    again = bundle_from_secret(secret, NOW)
    assert fingerprint(again.root) == fingerprint(root.root)
    assert again.signing_key.public_key() == root.signing_key.public_key()
    verify_client_chain(_issue(CertificateAuthority(again, IssuancePolicy())), [root.root])


@pytest.mark.parametrize(("data", "message"), [
    ({"ca-cert.pem": "Y2VydA=="}, r"istio-system/istio-ca-secret exists but has no ca-key\.pem"),
    ({}, r"has no ca-cert\.pem or ca-key\.pem"),
    ({"ca-cert.pem": "not base64!", "ca-key.pem": "a2V5"}, r"is not base64"),
    ({"ca-cert.pem": "Y2VydA==", "ca-key.pem": "a2V5"}, r"istio-ca-secret ca-cert\.pem"),
])
def test_a_broken_secret_is_refused_not_replaced(data: dict[str, str], message: str) -> None:
    secret = {"metadata": {"name": "istio-ca-secret", "namespace": "istio-system"}, "data": data}
    with pytest.raises(CaLoadError, match=message):
        bundle_from_secret(secret, NOW)
