"""A self-signed root, made on citadel's first start when no CA was plugged in."""

from __future__ import annotations

import datetime as dt
import secrets

from cryptography import x509
from cryptography.x509.oid import NameOID

from libs.pki import KeyType
from services.citadel.ca.bundle import CaBundle
from services.citadel.ca.profiles import ca_extensions, signature_hash

# Istio's self-signed root lives ten years.
DEFAULT_ROOT_TTL = dt.timedelta(days=3650)


def self_signed_root(key_type: KeyType, trust_domain: str, *, now: dt.datetime,
                     ttl: dt.timedelta = DEFAULT_ROOT_TTL, successor: bool = False) -> CaBundle:
    """`successor`: a root made to replace another, named apart from it (a serialNumber
    attribute), so that no verifier ever confuses two roots trusted side by side."""
    key = key_type.generate()
    # Istio names its root after the trust domain (O=cluster.local).
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
                  x509.NameAttribute(NameOID.COMMON_NAME, "Mizzen root CA")]
    if successor:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, secrets.token_hex(8)))
    name = x509.Name(attributes)
    builder = (x509.CertificateBuilder()
               .subject_name(name).issuer_name(name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + ttl))
    cert = ca_extensions(builder, key.public_key()).sign(key, signature_hash(key))
    return CaBundle(cert, key, (), cert, (cert,))
