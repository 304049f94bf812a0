"""PEM bundles: certificates in, certificates out, one per entry."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from libs.pki._errors import InvalidPem
from libs.pki._keys import PrivateKey

_BEGIN = "-----BEGIN CERTIFICATE-----"


def load_certs(data: bytes | str, *, what: str = "PEM data") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order; at least one."""
    raw = data.encode() if isinstance(data, str) else data
    if _BEGIN.encode() not in raw:
        raise InvalidPem(f"{what} holds no PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise InvalidPem(f"{what} is not a valid PEM certificate bundle: {exc}") from exc
    return certs


def split_pem(data: bytes | str, *, what: str = "PEM data") -> list[str]:
    """A bundle as one PEM string per certificate, each ending in a newline."""
    return [cert_pem(c) for c in load_certs(data, what=what)]


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: PrivateKey) -> bytes:
    """PKCS#8, unencrypted: what Envoy and Istio's cacerts expect."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(data: bytes, *, what: str = "private key") -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidPem(f"{what} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidPem(f"{what} is a {type(key).__name__}; only EC and RSA keys are supported")
    return key


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex: how bundles are deduplicated."""
    return cert.fingerprint(hashes.SHA256()).hex()
