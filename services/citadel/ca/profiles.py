"""Certificate profiles: which extensions a root, a workload leaf and a serving cert carry.

Workload leaves follow Istio: an empty subject, the SPIFFE id as the only (critical) SAN
(plus the DNS names granted to a serving identity such as the sidecar injector),
digitalSignature (+ keyEncipherment for RSA keys, meaningless for EC), serverAuth and
clientAuth, not a CA.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from libs.pki import PrivateKey, PublicKey


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for a P-384 key (matching its strength), SHA-256 otherwise."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _key_usage(*, digital_signature: bool = False, key_encipherment: bool = False,
               cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=key_encipherment,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )


def ca_extensions(builder: x509.CertificateBuilder, public_key: PublicKey) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _end_entity(builder: x509.CertificateBuilder, public_key: PublicKey,
                authority_key_id: x509.AuthorityKeyIdentifier, usages: list[x509.ObjectIdentifier],
                ) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True,
                                      key_encipherment=isinstance(public_key, rsa.RSAPublicKey)), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(authority_key_id, critical=False))


def workload_extensions(builder: x509.CertificateBuilder, public_key: PublicKey, spiffe_uri: str,
                        authority_key_id: x509.AuthorityKeyIdentifier,
                        dns_names: tuple[str, ...] = ()) -> x509.CertificateBuilder:
    builder = _end_entity(builder, public_key, authority_key_id,
                          [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_uri)]
    names += [x509.DNSName(name) for name in dns_names]
    # The subject is empty, so RFC 5280 requires the SAN extension to be critical.
    return builder.add_extension(x509.SubjectAlternativeName(names), critical=True)


def serving_extensions(builder: x509.CertificateBuilder, public_key: PublicKey, hosts: tuple[str, ...],
                       authority_key_id: x509.AuthorityKeyIdentifier) -> x509.CertificateBuilder:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    builder = _end_entity(builder, public_key, authority_key_id, [ExtendedKeyUsageOID.SERVER_AUTH])
    return builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
