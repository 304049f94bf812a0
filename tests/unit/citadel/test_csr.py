"""CSR checks: signature, key type and size, and the SANs a caller may ask for."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from libs.pki import SpiffeId
from services.agent.identity import new_key_and_csr
from services.citadel.ca import authorize, check_csr
from services.citadel.errors import IdentityMismatch, InvalidCsr

CALLER = SpiffeId("cluster.local", "default", "web")


def _csr(key, names: list[x509.GeneralName]) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"])
def test_a_good_csr_passes(key_type: str) -> None:
    _, pem = new_key_and_csr(key_type, CALLER)
    checked = check_csr(pem)
    assert checked.uris == (CALLER.uri,)
    authorize(checked, CALLER)


@pytest.mark.parametrize(("pem", "message"), [
    ("", "carries no CSR"),
    ("hello", "not a PEM PKCS#10 request"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "not a PEM PKCS#10"),
    ("A" * 20_000, "more than the 16384 allowed"),
])
def test_malformed_csrs(pem: str, message: str) -> None:
    with pytest.raises(InvalidCsr, match=message):
        check_csr(pem)


def test_a_tampered_csr_fails_its_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(x509.load_pem_x509_csr(_csr(key, [x509.UniformResourceIdentifier(CALLER.uri)]).encode())
                    .public_bytes(serialization.Encoding.DER))
    # Flip a byte of the URI inside the signed part.
    at = der.index(b"spiffe://") + len("spiffe://")
    der[at] ^= 0x01
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(InvalidCsr, match="signature does not verify"):
        check_csr(pem)


@pytest.mark.parametrize(("key", "name"), [
    (rsa.generate_private_key(public_exponent=65537, key_size=1024), "rsa-1024"),
    (ec.generate_private_key(ec.SECP521R1()), "ec-p521"),
    (ed25519.Ed25519PrivateKey.generate(), "ed25519"),
])
def test_keys_outside_the_allowed_set_are_refused(key, name: str) -> None:
    with pytest.raises(InvalidCsr, match=f"the CSR's key is {name}; allowed: ec-p256, ec-p384, rsa-2048"):
        check_csr(_csr(key, [x509.UniformResourceIdentifier(CALLER.uri)]))


def test_a_csr_without_uri_san_is_malformed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidCsr, match="carries no URI SAN"):
        check_csr(_csr(key, []))


@pytest.mark.parametrize("names", [
    [x509.UniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/admin")],
    [x509.UniformResourceIdentifier(CALLER.uri), x509.UniformResourceIdentifier("spiffe://evil/ns/default/sa/web")],
    [x509.UniformResourceIdentifier(CALLER.uri), x509.DNSName("bank.example.com")],
])
def test_names_beyond_the_callers_identity_are_refused(names: list[x509.GeneralName]) -> None:
    checked = check_csr(_csr(ec.generate_private_key(ec.SECP256R1()), names))
    with pytest.raises(IdentityMismatch, match=f"caller {CALLER.uri} may not request"):
        authorize(checked, CALLER)
