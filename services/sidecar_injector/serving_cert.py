"""The webhook's TLS certificate: from citadel, renewed before it expires, no restart.

The key is made here and never leaves the process: the CSR names the injector's SPIFFE id
and the Service DNS names the API server dials (citadel signs those only for an identity
it grants them to), and is authenticated with the injector's service-account token.  The
chain and key reach OpenSSL through memory-only files (memfd), never the disk.
Every new TLS handshake picks the newest certificate: the server's context has no
certificate of its own, and its SNI callback (OpenSSL calls it on every handshake, SNI or
not) hands the connection the current context.  Connections already open keep theirs.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import ssl
import time
from dataclasses import dataclass

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.pki import (
    CitadelClient,
    CitadelError,
    CitadelRefused,
    InvalidPem,
    PkiError,
    PrivateKey,
    SpiffeId,
    generate_key,
    key_pem,
    load_certs,
)
from libs.runtime import Readiness
from services.sidecar_injector.errors import CertificateError, InvalidCertificate

log = structlog.get_logger(__name__)

SERVING_CERT = "serving-cert"


@dataclass(frozen=True)
class ServingIdentity:
    spiffe: SpiffeId
    dns_names: tuple[str, ...]


@dataclass(frozen=True)
class Issued:
    leaf: x509.Certificate
    chain_pem: bytes
    key_pem: bytes

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
    # Served without the root: the API server holds it (the webhook's caBundle).
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs[:-1])
    return Issued(leaf, chain_pem, key_pem(key))


def ssl_context(issued: Issued) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    files = []
    try:
        for name, data in (("chain", issued.chain_pem), ("key", issued.key_pem)):
            fd = os.memfd_create(f"webhook-{name}", os.MFD_CLOEXEC)
            files.append(fd)
            os.write(fd, data)
        context.load_cert_chain(f"/proc/self/fd/{files[0]}", f"/proc/self/fd/{files[1]}")
    finally:
        for fd in files:
            os.close(fd)
    return context


class ServingCertificate:
    def __init__(self, signer: CitadelClient, identity: ServingIdentity, readiness: Readiness,
                 registry: CollectorRegistry, *, ttl_s: int, rotation_fraction: float,
                 retry_initial_s: float, retry_max_s: float) -> None:
        if not 0.0 < rotation_fraction < 1.0:
            raise ValueError(f"cert_rotation_fraction must be between 0 and 1, not {rotation_fraction}")
        self.signer = signer
        self.identity = identity
        self.readiness = readiness
        readiness.require(SERVING_CERT)
        self.ttl_s = ttl_s
        self.rotation_fraction = rotation_fraction
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.issued: Issued | None = None
        self._current: ssl.SSLContext | None = None
        self._first = asyncio.Event()
        self.renewals = Counter("sidecar_injector_serving_certs", "webhook certificates obtained from citadel",
                                registry=registry)
        self.failures = Counter("sidecar_injector_serving_cert_failures", "CSRs for the webhook certificate "
                                "that failed", ["reason"], registry=registry)
        self.expiry = Gauge("sidecar_injector_serving_cert_expiry_timestamp", "Unix time the webhook certificate "
                            "expires", registry=registry)
        # The context the server holds: no certificate, only the hand-over to the current one.
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_context.sni_callback = self._select

    def _select(self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        if self._current is not None:
            connection.context = self._current

    async def ready(self) -> None:
        """Return once the first certificate is in place."""
        await self._first.wait()

    async def run(self) -> None:
        while True:
            issued = await self._obtain()
            self._current = ssl_context(issued)
            self.issued = issued
            self.renewals.inc()
            self.expiry.set(issued.not_after)
            self.readiness.mark(SERVING_CERT)
            self._first.set()
            received = time.time()
            delay = max(self.rotation_fraction * (issued.not_after - received), 0.0)
            log.info("webhook certificate installed", serial=f"{issued.leaf.serial_number:x}",
                     not_after=issued.leaf.not_valid_after_utc.isoformat(), renew_in_s=round(delay, 3),
                     dns_names=list(self.identity.dns_names))
            await asyncio.sleep(delay)

    async def _obtain(self) -> Issued:
        delay = self.retry_initial_s
        while True:
            try:
                key, csr = new_key_and_csr(self.identity)
                return accept(await self.signer.create_certificate(csr, self.ttl_s), key, self.identity)
            except (CertificateError, CitadelError) as exc:
                self.failures.labels(type(exc).__name__).inc()
                level = log.error if isinstance(exc, CitadelRefused | InvalidCertificate) else log.warning
                level("getting the webhook certificate failed; retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)
