"""The CA: turns a checked CSR and an authenticated identity into a certificate chain.

Pure apart from the clock and randomness (serial numbers): no files, no network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography import x509

from libs.pki import PublicKey, SpiffeId, cert_pem
from services.citadel.ca.bundle import CaBundle
from services.citadel.ca.csr import CheckedCsr, authorize
from services.citadel.ca.profiles import serving_extensions, signature_hash, workload_extensions
from services.citadel.errors import InvalidTtl

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class IssuancePolicy:
    """How long workload certificates live, and the trust domain their SPIFFE ids carry."""

    trust_domain: str = "cluster.local"
    # Istio: 24 h by default.
    default_ttl_s: int = 24 * 3600
    # Istio's MAX_WORKLOAD_CERT_TTL: 90 days.  Longer requests are refused, not clamped.
    max_ttl_s: int = 90 * 24 * 3600
    # NotBefore is set this far in the past so a peer whose clock lags still accepts
    # a fresh certificate.
    clock_skew_s: int = 60
    # DNS names an identity may have beside its SPIFFE id, by (namespace, service account):
    # a webhook's Service name, which the Kubernetes API server checks (Istio 1.0's citadel
    # granted the sidecar injector and galley theirs).  Everyone else gets none.
    dns_grants: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def ttl_for(self, requested_s: int) -> int:
        """The validity to issue: the default for 0 or less, refused above the maximum."""
        if requested_s <= 0:
            return self.default_ttl_s
        if requested_s > self.max_ttl_s:
            raise InvalidTtl(requested_s, self.max_ttl_s)
        return requested_s


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    cert: x509.Certificate
    # PEM, one certificate per entry: leaf, intermediates, root last (Istio's order).
    chain: tuple[str, ...]


class CertificateAuthority:
    def __init__(self, bundle: CaBundle, policy: IssuancePolicy, *, clock: Clock = utc_now) -> None:
        self.bundle = bundle
        self.policy = policy
        self._clock = clock
        self._hash = signature_hash(bundle.signing_key)
        self._issuer_name = bundle.signing_cert.subject
        self._authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(
            bundle.signing_cert.public_key())  # type: ignore[arg-type]
        self._chain_after_leaf = bundle.chain_after_leaf()

    def identity(self, namespace: str, service_account: str) -> SpiffeId:
        return SpiffeId(self.policy.trust_domain, namespace, service_account)

    def sign_workload(self, csr: CheckedCsr, caller: SpiffeId, requested_ttl_s: int) -> IssuedCertificate:
        """Sign `csr` for `caller` after checking it asks for nothing else (beyond the DNS
        names granted to it); Istio's profile."""
        granted = self.policy.dns_grants.get((caller.namespace, caller.service_account), frozenset())
        authorize(csr, caller, granted)
        ttl_s = self.policy.ttl_for(requested_ttl_s)
        builder = workload_extensions(self._builder(csr.public_key, ttl_s), csr.public_key, caller.uri,
                                      self._authority_key_id, csr.dns_names)
        return self._issue(builder)

    def issue_serving(self, public_key: PublicKey, hosts: tuple[str, ...], ttl_s: int) -> IssuedCertificate:
        """A TLS server certificate for citadel's own gRPC endpoint."""
        builder = serving_extensions(self._builder(public_key, ttl_s), public_key, hosts, self._authority_key_id)
        return self._issue(builder)

    def trust_bundle_pem(self) -> str:
        return self.bundle.trust_bundle_pem()

    def _builder(self, public_key: PublicKey, ttl_s: int) -> x509.CertificateBuilder:
        now = self._clock()
        not_after = now + dt.timedelta(seconds=ttl_s)
        # A certificate never outlives the one that signed it: verifiers would reject it.
        not_after = min(not_after, self.bundle.signing_cert.not_valid_after_utc)
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(self._issuer_name)
                .public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(seconds=self.policy.clock_skew_s))
                .not_valid_after(not_after))

    def _issue(self, builder: x509.CertificateBuilder) -> IssuedCertificate:
        cert = builder.sign(self.bundle.signing_key, self._hash)
        return IssuedCertificate(cert, (cert_pem(cert), *self._chain_after_leaf))


def parse_dns_grants(entries: tuple[str, ...]) -> dict[tuple[str, str], frozenset[str]]:
    """`namespace/serviceaccount=dns.name` entries (one name each; repeat an identity for
    several) as `IssuancePolicy.dns_grants`; ValueError names a malformed entry."""
    grants: dict[tuple[str, str], set[str]] = {}
    for entry in entries:
        identity, _, name = entry.partition("=")
        namespace, _, service_account = identity.strip().partition("/")
        name = name.strip().lower().rstrip(".")
        if not namespace or not service_account or not name or "*" in name:
            raise ValueError(f"dns_grants entry {entry!r} is not namespace/serviceaccount=dns.name "
                             "(wildcards are not granted)")
        grants.setdefault((namespace, service_account), set()).add(name)
    return {identity: frozenset(names) for identity, names in grants.items()}
