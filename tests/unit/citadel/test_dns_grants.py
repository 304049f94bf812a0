"""DNS names beside a SPIFFE id: signed only for the identity they are granted to (the
sidecar injector's webhook Service), refused for everyone else."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from libs.pki import SpiffeId, parse_key_type
from services.citadel.ca import CertificateAuthority, IssuancePolicy, check_csr, parse_dns_grants, self_signed_root
from services.citadel.errors import IdentityMismatch

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
INJECTOR = SpiffeId("cluster.local", "istio-system", "istio-sidecar-injector-service-account")
SERVICE = "istio-sidecar-injector.istio-system.svc"
GRANTS = parse_dns_grants((f"istio-system/istio-sidecar-injector-service-account={SERVICE}",
                           "istio-system/istio-sidecar-injector-service-account=localhost"))


def csr(identity: SpiffeId, *dns: str) -> str:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    names += [x509.DNSName(name) for name in dns]
    request = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .add_extension(x509.SubjectAlternativeName(names), critical=True)
               .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM).decode()


def ca() -> CertificateAuthority:
    bundle = self_signed_root(parse_key_type("ec-p256"), "cluster.local", now=NOW)
    return CertificateAuthority(bundle, IssuancePolicy(dns_grants=GRANTS), clock=lambda: NOW)


def test_granted_names_are_signed_beside_the_spiffe_id() -> None:
    cert = ca().sign_workload(check_csr(csr(INJECTOR, SERVICE, "localhost")), INJECTOR, 3600).cert
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [INJECTOR.uri]
    assert san.get_values_for_type(x509.DNSName) == [SERVICE, "localhost"]


def test_a_name_not_granted_is_refused() -> None:
    with pytest.raises(IdentityMismatch, match=r"may not request a certificate for DNSName bank\.example\.com"):
        ca().sign_workload(check_csr(csr(INJECTOR, SERVICE, "bank.example.com")), INJECTOR, 3600)


def test_another_identity_may_not_use_the_injectors_names() -> None:
    other = SpiffeId("cluster.local", "default", "web")
    with pytest.raises(IdentityMismatch, match=f"DNSName {SERVICE}"):
        ca().sign_workload(check_csr(csr(other, SERVICE)), other, 3600)


@pytest.mark.parametrize("entry", ["istio-system=svc", "istio-system/sa=", "/sa=x", "ns/sa=*.svc"])
def test_malformed_grants(entry: str) -> None:
    with pytest.raises(ValueError, match=r"is not namespace/serviceaccount=dns\.name"):
        parse_dns_grants((entry,))
