"""The secrets the SDS server offers, Istio's names: `default` (the workload's chain and
key) and `ROOTCA` (the trust bundle), each built once per change with a content version."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from google.protobuf import any_pb2

from libs.envoy import SECRET_TYPE
from services.agent.identity import WorkloadCert
from services.agent.trust import TrustBundle

log = structlog.get_logger(__name__)

DEFAULT = "default"
ROOTCA = "ROOTCA"


@dataclass(frozen=True, slots=True)
class SecretResource:
    name: str
    version: str
    packed: any_pb2.Any


def _resource(secret: secret_pb2.Secret) -> SecretResource:
    body = secret.SerializeToString(deterministic=True)
    return SecretResource(secret.name, hashlib.sha256(body).hexdigest()[:16],
                          any_pb2.Any(type_url=SECRET_TYPE, value=body))


def tls_certificate(cert: WorkloadCert) -> SecretResource:
    return _resource(secret_pb2.Secret(name=DEFAULT, tls_certificate=common_pb2.TlsCertificate(
        certificate_chain=base_pb2.DataSource(inline_bytes=cert.chain_pem()),
        private_key=base_pb2.DataSource(inline_bytes=cert.key_pem))))


def validation_context(bundle_pem: bytes) -> SecretResource:
    return _resource(secret_pb2.Secret(name=ROOTCA, validation_context=common_pb2.CertificateValidationContext(
        trusted_ca=base_pb2.DataSource(inline_bytes=bundle_pem))))


class SecretStore:
    """Current secrets; every change calls the listeners (one per SDS stream)."""

    def __init__(self, trust: TrustBundle, *, clock: Callable[[], float] = time.time) -> None:
        self.trust = trust
        self.cert: WorkloadCert | None = None
        self.resources: dict[str, SecretResource] = {}
        self._clock = clock
        self._listeners: set[Callable[[], None]] = set()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.discard(listener)

    def set_certificate(self, cert: WorkloadCert) -> None:
        self.cert = cert
        self.resources[DEFAULT] = tls_certificate(cert)
        self.trust.from_citadel(cert.root, self._clock())
        self._rebuild_roots()
        self._notify()

    def set_roots(self, roots: list[x509.Certificate]) -> bool:
        """A new trust bundle from KV; True if the served roots changed."""
        changed = self.trust.from_kv(roots, self._clock())
        if changed:
            self._rebuild_roots()
            self._notify()
        return changed

    def prune(self) -> None:
        if self.trust.prune(self._clock()):
            self._rebuild_roots()
            self._notify()

    def _rebuild_roots(self) -> None:
        pem = self.trust.pem(self._clock())
        if pem:
            self.resources[ROOTCA] = validation_context(pem)
        log.info("trust bundle served", source=self.trust.source, roots=self.trust.fingerprints(self._clock()))

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()
