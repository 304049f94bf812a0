"""The workload's identity, pure: a fresh key and CSR, and the checks on citadel's answer.

The private key lives only in memory (in `WorkloadCert` and the SDS responses to Envoy on
a local socket); it is never written to disk and never sent to citadel.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from libs.pki import InvalidPem, PkiError, PrivateKey, SpiffeId, fingerprint, generate_key, key_pem, load_certs
from services.agent.errors import InvalidCertificateResponse


@dataclass(frozen=True)
class WorkloadCert:
    leaf: x509.Certificate
    # Leaf first, then intermediates; the root is kept apart.
    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate
    key_pem: bytes
    # Local time the agent received it: the lifetime to rotate in is counted from here,
    # not from NotBefore, which citadel sets in the past for clock skew.
    received_at: float

    @property
    def not_after(self) -> float:
        return self.leaf.not_valid_after_utc.timestamp()

    @property
    def serial(self) -> str:
        return f"{self.leaf.serial_number:x}"

    @property
    def root_fingerprint(self) -> str:
        return fingerprint(self.root)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def rotate_at(self, fraction: float) -> float:
        """When to renew: after `fraction` of the time between receipt and expiry."""
        return self.received_at + fraction * max(self.not_after - self.received_at, 0.0)


def new_key_and_csr(key_type: str, identity: SpiffeId) -> tuple[PrivateKey, str]:
    key = generate_key(key_type)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True)
           .sign(key, hashes.SHA256()))
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def _uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def accept_response(cert_chain: list[str], key: PrivateKey, identity: SpiffeId, *, received_at: float) -> WorkloadCert:
    """Check citadel's chain (leaf ... root) is for our key and identity and hangs together."""
    if not cert_chain:
        raise InvalidCertificateResponse("citadel returned an empty certificate chain")
    try:
        certs = [c for pem in cert_chain for c in load_certs(pem, what="citadel's certificate chain")]
    except (InvalidPem, PkiError) as exc:
        raise InvalidCertificateResponse(str(exc)) from exc
    if len(certs) < 2:
        raise InvalidCertificateResponse("citadel returned the leaf without the chain to its root")
    leaf = certs[0]
    if leaf.public_key() != key.public_key():
        raise InvalidCertificateResponse("the certificate is not for the key in our CSR")
    if _uris(leaf) != [identity.uri]:
        raise InvalidCertificateResponse(f"the certificate names {_uris(leaf)}, not {identity.uri}")
    for child, parent in itertools.pairwise(certs):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise InvalidCertificateResponse(
                f"certificate {child.subject.rfc4514_string() or 'leaf'} is not signed by the next in the chain"
            ) from exc
    return WorkloadCert(leaf, tuple(certs[:-1]), certs[-1], key_pem(key), received_at)
