"""Test PKI: root and intermediate CAs in Istio's cacerts layout, and chain verification
with cryptography's RFC 5280 path validator (not Mizzen's own code)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from libs.pki import PrivateKey, cert_pem, key_pem, parse_key_type
from services.citadel.ca.profiles import ca_extensions, signature_hash


def make_ca(name: str, *, issuer: tuple[x509.Certificate, PrivateKey] | None = None, key_type: str = "ec-p256",
            days: int = 365, not_before: dt.datetime | None = None) -> tuple[x509.Certificate, PrivateKey]:
    key = parse_key_type(key_type).generate()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + dt.timedelta(days=days)))
    builder = ca_extensions(builder, key.public_key()).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
        critical=False)
    return builder.sign(issuer_key, signature_hash(issuer_key)), key


def write_cacerts(directory: Path, signing: tuple[x509.Certificate, PrivateKey],
                  chain: list[x509.Certificate], roots: list[x509.Certificate]) -> Path:
    """Istio's layout: ca-cert.pem, ca-key.pem, cert-chain.pem (signing cert up to the root), root-cert.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca-cert.pem").write_text(cert_pem(signing[0]))
    (directory / "ca-key.pem").write_bytes(key_pem(signing[1]))
    (directory / "ca-key.pem").chmod(0o600)
    (directory / "cert-chain.pem").write_text("".join(cert_pem(c) for c in chain))
    (directory / "root-cert.pem").write_text("".join(cert_pem(c) for c in roots))
    return directory


def verify_client_chain(chain_pem: list[str], roots: list[x509.Certificate], *,
                        at: dt.datetime | None = None) -> x509.Certificate:
    """Path-validate leaf (chain[0]) through the intermediates to one of `roots` as a TLS
    client certificate, at time `at` (default now); raises if it does not verify."""
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in chain_pem]
    policy = PolicyBuilder().store(Store(roots))
    if at is not None:
        policy = policy.time(at)
    verifier = policy.build_client_verifier()
    verifier.verify(certs[0], certs[1:])
    return certs[0]
