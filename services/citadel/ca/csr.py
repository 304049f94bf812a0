"""CSR checks, pure: is it a well-formed, self-signed request for an allowed key, and
does it ask only for the caller's own SPIFFE id (and the DNS names granted to it)?"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from libs.pki import PublicKey, SpiffeId, describe_key
from services.citadel.errors import IdentityMismatch, InvalidCsr

# Workload keys citadel signs: NIST P-256/P-384 and RSA of at least 2048 bits.
ALLOWED_KEY_TYPES = frozenset({"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"})
# A CSR is a few hundred bytes; refuse to parse megabytes.
MAX_CSR_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class CheckedCsr:
    public_key: PublicKey
    uris: tuple[str, ...]
    # Every other SAN (DNS names, IPs, e-mail) as text, to refuse them by name.
    other_names: tuple[str, ...]
    # The DNS names among them, for a caller granted serving names (the sidecar injector's
    # webhook certificate).
    dns_names: tuple[str, ...] = ()


def check_csr(pem: str | bytes, *, allowed_key_types: frozenset[str] = ALLOWED_KEY_TYPES) -> CheckedCsr:
    """Parse the PEM CSR and check its signature and key; raise InvalidCsr saying why."""
    raw = pem.encode() if isinstance(pem, str) else pem
    if not raw.strip():
        raise InvalidCsr("the request carries no CSR")
    if len(raw) > MAX_CSR_BYTES:
        raise InvalidCsr(f"the CSR is {len(raw)} bytes, more than the {MAX_CSR_BYTES} allowed")
    try:
        csr = x509.load_pem_x509_csr(raw)
    except ValueError as exc:
        raise InvalidCsr(f"the CSR is not a PEM PKCS#10 request: {exc}") from exc
    try:
        public_key = csr.public_key()
    except (ValueError, x509.UnsupportedGeneralNameType) as exc:
        raise InvalidCsr(f"the CSR's public key cannot be read: {exc}") from exc
    if (not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
            or describe_key(public_key) not in allowed_key_types):
        raise InvalidCsr(f"the CSR's key is {describe_key(public_key)}; "
                         f"allowed: {', '.join(sorted(allowed_key_types))}")
    if not csr.is_signature_valid:
        raise InvalidCsr("the CSR's signature does not verify with its own public key")
    uris, others, dns_names = _sans(csr)
    if not uris:
        raise InvalidCsr("the CSR carries no URI SAN; it must name the caller's SPIFFE id")
    return CheckedCsr(public_key, uris, others, dns_names)


def _sans(csr: x509.CertificateSigningRequest) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return (), (), ()
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise InvalidCsr(f"the CSR's extensions cannot be parsed: {exc}") from exc
    uris: list[str] = []
    others: list[str] = []
    dns_names: list[str] = []
    for name in extension.value:
        if isinstance(name, x509.UniformResourceIdentifier):
            uris.append(name.value)
        else:
            others.append(f"{type(name).__name__} {name.value}")
            if isinstance(name, x509.DNSName):
                dns_names.append(name.value)
    return tuple(uris), tuple(others), tuple(dns_names)


def authorize(checked: CheckedCsr, caller: SpiffeId, granted_dns: frozenset[str] = frozenset()) -> None:
    """The caller may ask for its own SPIFFE id and nothing else (Istio's rule for CSR SANs),
    except the DNS names granted to its identity (Istio 1.0's citadel gave the sidecar
    injector its webhook Service name the same way)."""
    for uri in checked.uris:
        if uri != caller.uri:
            raise IdentityMismatch(caller.uri, uri)
    dns = {f"DNSName {name}" for name in checked.dns_names if name in granted_dns}
    for other in checked.other_names:
        if other not in dns:
            raise IdentityMismatch(caller.uri, other)
