"""A server's TLS certificate from citadel, renewed before it expires, never on disk.

For the control plane's own servers (the injector's webhook, pilot's secure xDS): the key
is made in memory, the CSR names the service's SPIFFE id and the DNS names its clients
dial (citadel signs those only for identities it grants them to), and the chain citadel
returns is checked to be for that key and those names before it is used.  The caller
turns each certificate into its server's credentials (`on_issued`); renewal at
`rotation_fraction` of the certificate's life needs no restart.

While citadel rotates its root, the certificate is renewed early: every `root_check_s` the
signer's roots are read (citadel's root-cert.pem, or the mounted `istio-ca-root-cert`,
whose first certificate is the root citadel signs with), and a certificate from another
root is replaced.  Clients trust both roots by then (citadel publishes the new root before
it signs with it), so the swap fails no handshake.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.pki._citadel import CitadelClient, CitadelError, CitadelRefused
from libs.pki._errors import InvalidPem, PkiError
from libs.pki._keys import PrivateKey, generate_key
from libs.pki._pem import fingerprint, key_pem, load_certs
from libs.pki._spiffe import SpiffeId

log = structlog.get_logger(__name__)


class InvalidCertificate(PkiError):
    """Citadel's answer is not a certificate for our key and names, chained to its root."""


@dataclass(frozen=True)
class ServingIdentity:
    spiffe: SpiffeId
    dns_names: tuple[str, ...]


@dataclass(frozen=True)
class Issued:
    leaf: x509.Certificate
    # The chain without its root (clients hold the root).
    chain_pem: bytes
    key_pem: bytes
    # SHA-256 of the root the chain ends at.
    root_fingerprint: str = ""

    @property
    def not_after(self) -> float:
        return self.leaf.not_valid_after_utc.timestamp()


def new_key_and_csr(identity: ServingIdentity) -> tuple[PrivateKey, str]:
    key = generate_key("ec-p256")
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.spiffe.uri)]
    names += [x509.DNSName(name) for name in identity.dns_names]
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(names), critical=True)
           .sign(key, hashes.SHA256()))
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def accept(chain: list[str], key: PrivateKey, identity: ServingIdentity) -> Issued:
    """Citadel's chain (leaf ... root), checked to be for our key and names and to hang together."""
    try:
        certs = [c for pem in chain for c in load_certs(pem, what="citadel's certificate chain")]
    except (InvalidPem, PkiError) as exc:
        raise InvalidCertificate(str(exc)) from exc
    if len(certs) < 2:
        raise InvalidCertificate("citadel returned no chain to its root")
    leaf = certs[0]
    if leaf.public_key() != key.public_key():
        raise InvalidCertificate("the certificate is not for the key in our CSR")
    try:
        dns = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    missing = sorted(set(identity.dns_names) - set(dns))
    if missing:
        raise InvalidCertificate(f"the certificate lacks the DNS names {missing}")
    for child, parent in itertools.pairwise(certs):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise InvalidCertificate("the chain does not verify") from exc
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs[:-1])
    return Issued(leaf, chain_pem, key_pem(key), fingerprint(certs[-1]))


class ServingCertificate:
    """Obtains the certificate, hands each one to `on_issued`, renews it, retries with backoff."""

    def __init__(self, signer: CitadelClient, identity: ServingIdentity, on_issued: Callable[[Issued], None],
                 registry: CollectorRegistry, *, metric_prefix: str, what: str, ttl_s: int,
                 rotation_fraction: float, retry_initial_s: float, retry_max_s: float,
                 root_check_s: float = 2.0) -> None:
        if not 0.0 < rotation_fraction < 1.0:
            raise ValueError(f"cert_rotation_fraction must be between 0 and 1, not {rotation_fraction}")
        self.signer = signer
        self.identity = identity
        self.on_issued = on_issued
        self.what = what
        self.ttl_s = ttl_s
        self.rotation_fraction = rotation_fraction
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.root_check_s = root_check_s
        self._signing_at_request: str | None = None
        self.issued: Issued | None = None
        self._first = asyncio.Event()
        self.renewals = Counter(f"{metric_prefix}_serving_certs", f"{what} certificates obtained from citadel",
                                registry=registry)
        self.failures = Counter(f"{metric_prefix}_serving_cert_failures", f"CSRs for the {what} certificate "
                                "that failed", ["reason"], registry=registry)
        self.expiry = Gauge(f"{metric_prefix}_serving_cert_expiry_timestamp", f"Unix time the {what} certificate "
                            "expires", registry=registry)

    async def ready(self) -> None:
        """Return once the first certificate is in place."""
        await self._first.wait()

    async def run(self) -> None:
        while True:
            issued = await self._obtain()
            self.on_issued(issued)
            self.issued = issued
            self.renewals.inc()
            self.expiry.set(issued.not_after)
            self._first.set()
            delay = max(self.rotation_fraction * (issued.not_after - time.time()), 0.0)
            log.info(f"{self.what} certificate installed", serial=f"{issued.leaf.serial_number:x}",
                     not_after=issued.leaf.not_valid_after_utc.isoformat(), renew_in_s=round(delay, 3),
                     dns_names=list(self.identity.dns_names))
            await self._until_renewal(issued, delay)

    async def _until_renewal(self, issued: Issued, delay: float) -> None:
        """Sleep `delay`, or less if the roots file names a new signing root meanwhile (one
        that is not the root of our certificate, and not the one it named when we asked:
        a file that lags behind citadel, or a copy never updated, must not make us renew
        again and again)."""
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, self.root_check_s))
            signing = self.signer.signing_root()
            if signing is not None and signing not in (issued.root_fingerprint, self._signing_at_request):
                log.info(f"citadel signs with a new root; renewing the {self.what} certificate",
                         serial=f"{issued.leaf.serial_number:x}", root=signing[:16])
                return

    async def _obtain(self) -> Issued:
        delay = self.retry_initial_s
        while True:
            try:
                key, csr = new_key_and_csr(self.identity)
                self._signing_at_request = self.signer.signing_root()
                return accept(await self.signer.create_certificate(csr, self.ttl_s), key, self.identity)
            except (CitadelError, InvalidCertificate) as exc:
                self.failures.labels(type(exc).__name__).inc()
                level = log.error if isinstance(exc, CitadelRefused | InvalidCertificate) else log.warning
                level(f"getting the {self.what} certificate failed; retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)
