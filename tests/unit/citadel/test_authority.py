"""The CA's certificate profile: SAN, key usages, TTL and max TTL, chain order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from libs.pki import SpiffeId, parse_key_type
from services.agent.identity import new_key_and_csr
from services.citadel.ca import CertificateAuthority, IssuancePolicy, check_csr, self_signed_root
from services.citadel.errors import IdentityMismatch, InvalidTtl
from tests.harness.pki import verify_client_chain

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
WORKLOAD = SpiffeId("cluster.local", "shop", "cart")


def _ca(key_type: str = "ec-p256", **policy: Any) -> CertificateAuthority:
    bundle = self_signed_root(parse_key_type(key_type), "cluster.local", now=NOW)
    return CertificateAuthority(bundle, IssuancePolicy(**policy), clock=lambda: NOW)


def _sign(ca: CertificateAuthority, key_type: str = "ec-p256", ttl_s: int = 0):
    _, csr = new_key_and_csr(key_type, WORKLOAD)
    return ca.sign_workload(check_csr(csr), WORKLOAD, ttl_s)


@pytest.mark.parametrize("ca_key", ["ec-p256", "ec-p384", "rsa-2048"])
@pytest.mark.parametrize("workload_key", ["ec-p256", "rsa-2048"])
def test_workload_profile(ca_key: str, workload_key: str) -> None:
    ca = _ca(ca_key)
    cert = _sign(ca, workload_key).cert
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical, "the subject is empty, so the SAN must be critical"
    assert list(san.value) == [x509.UniformResourceIdentifier("spiffe://cluster.local/ns/shop/sa/cart")]
    assert cert.subject == x509.Name([])
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert usage.value.key_encipherment is workload_key.startswith("rsa")
    assert not usage.value.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    assert cert.issuer == ca.bundle.root.subject


def test_chain_is_leaf_then_root_and_verifies() -> None:
    ca = _ca()
    issued = _sign(ca)
    assert len(issued.chain) == 2
    assert x509.load_pem_x509_certificate(issued.chain[0].encode()) == issued.cert
    assert x509.load_pem_x509_certificate(issued.chain[-1].encode()) == ca.bundle.root
    verify_client_chain(list(issued.chain), [ca.bundle.root], at=NOW)


def test_default_ttl_requested_ttl_and_backdating() -> None:
    ca = _ca(default_ttl_s=86400, clock_skew_s=60)
    default = _sign(ca).cert
    assert default.not_valid_after_utc - NOW == dt.timedelta(hours=24)
    assert NOW - default.not_valid_before_utc == dt.timedelta(seconds=60)
    assert _sign(ca, ttl_s=4).cert.not_valid_after_utc - NOW == dt.timedelta(seconds=4)
    assert _sign(ca, ttl_s=-5).cert.not_valid_after_utc - NOW == dt.timedelta(hours=24)


def test_ttl_above_maximum_is_refused_not_clamped() -> None:
    ca = _ca(max_ttl_s=3600)
    assert _sign(ca, ttl_s=3600).cert.not_valid_after_utc - NOW == dt.timedelta(hours=1)
    with pytest.raises(InvalidTtl, match="requested validity 3601s exceeds the maximum of 3600s"):
        _sign(ca, ttl_s=3601)


def test_leaf_never_outlives_its_issuer() -> None:
    bundle = self_signed_root(parse_key_type("ec-p256"), "cluster.local", now=NOW, ttl=dt.timedelta(hours=2))
    ca = CertificateAuthority(bundle, IssuancePolicy(), clock=lambda: NOW)
    _, csr = new_key_and_csr("ec-p256", WORKLOAD)
    cert = ca.sign_workload(check_csr(csr), WORKLOAD, 86400).cert
    assert cert.not_valid_after_utc == bundle.root.not_valid_after_utc


def test_nothing_is_signed_for_another_identity() -> None:
    ca = _ca()
    _, csr = new_key_and_csr("ec-p256", SpiffeId("cluster.local", "shop", "payments"))
    with pytest.raises(IdentityMismatch, match=r"caller spiffe://cluster\.local/ns/shop/sa/cart may not "
                                               r"request .*sa/payments"):
        ca.sign_workload(check_csr(csr), WORKLOAD, 0)


def test_serving_certificate_has_dns_and_ip_names_for_server_auth_only() -> None:
    ca = _ca()
    key = parse_key_type("ec-p256").generate()
    cert = ca.issue_serving(key.public_key(), ("localhost", "127.0.0.1"), 3600).cert
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
