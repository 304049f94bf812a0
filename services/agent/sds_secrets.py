"""The secrets the SDS server offers, each built once per change with a content version:
`default` (the workload's chain and key) and `ROOTCA` (the trust bundle) from the identity,
and the names streams ask for beyond those (credentials, certificate files), which the
store hands to whoever resolves them (`sds_credentials`) through `on_wanted`.

The store also knows what Envoy applied: each stream's ACKed resources (`acked`), from which
`applied()` tells the roots every ROOTCA subscription took and the roots of the
certificates Envoy may present, what the agent reports while citadel rotates its root."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import structlog
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from google.protobuf import any_pb2

from libs.envoy import SECRET_TYPE
from services.agent.identity import WorkloadCert
from services.agent.sds_names import DEFAULT, ROOTCA
from services.agent.trust import TrustBundle

__all__ = ["DEFAULT", "ROOTCA", "SecretResource", "SecretStore", "certificate_secret", "tls_certificate",
           "validation_context"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SecretResource:
    name: str
    version: str
    packed: any_pb2.Any
    # What the resource means for a root rotation: the fingerprints of the roots a ROOTCA
    # holds, and the root the `default` certificate chains to.
    roots: tuple[str, ...] = ()
    cert_root: str = ""


@dataclass(frozen=True)
class Applied:
    """What Envoy took: roots every ROOTCA subscription ACKed (the served ones when nothing
    subscribes), and the roots of every certificate it may present."""

    trusted: tuple[str, ...]
    cert_roots: tuple[str, ...]


def _resource(secret: secret_pb2.Secret) -> SecretResource:
    body = secret.SerializeToString(deterministic=True)
    return SecretResource(secret.name, hashlib.sha256(body).hexdigest()[:16],
                          any_pb2.Any(type_url=SECRET_TYPE, value=body))


def tls_certificate(cert: WorkloadCert) -> SecretResource:
    return replace(certificate_secret(DEFAULT, cert.chain_pem(), cert.key_pem), cert_root=cert.root_fingerprint)


def certificate_secret(name: str, chain_pem: bytes, key_pem: bytes) -> SecretResource:
    return _resource(secret_pb2.Secret(name=name, tls_certificate=common_pb2.TlsCertificate(
        certificate_chain=base_pb2.DataSource(inline_bytes=chain_pem),
        private_key=base_pb2.DataSource(inline_bytes=key_pem))))


def validation_context(bundle_pem: bytes, name: str = ROOTCA) -> SecretResource:
    return _resource(secret_pb2.Secret(name=name, validation_context=common_pb2.CertificateValidationContext(
        trusted_ca=base_pb2.DataSource(inline_bytes=bundle_pem))))


class SecretStore:
    """Current secrets; every change calls the listeners (one per SDS stream)."""

    def __init__(self, trust: TrustBundle, *, clock: Callable[[], float] = time.time) -> None:
        self.trust = trust
        self.cert: WorkloadCert | None = None
        self.resources: dict[str, SecretResource] = {}
        self._clock = clock
        self._listeners: set[Callable[[], None]] = set()
        # Names each stream asks for, and who resolves the ones beyond default/ROOTCA.
        self._wanted: dict[str, frozenset[str]] = {}
        self._on_wanted: Callable[[frozenset[str]], None] | None = None
        # What each stream's Envoy ACKed, by name.
        self._acked: dict[str, dict[str, SecretResource]] = {}
        self._applied_listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.discard(listener)

    def on_wanted(self, callback: Callable[[frozenset[str]], None]) -> None:
        """`callback(names)` with every name some stream asks for, whenever that set changes."""
        self._on_wanted = callback

    def want(self, stream: str, names: frozenset[str]) -> None:
        """What `stream` asks for now (called before answering it, so that what can be
        resolved at once is in `resources` for the answer)."""
        if self._wanted.get(stream) != names:
            self._wanted[stream] = names
            self._wanted_changed()

    def release(self, stream: str) -> None:
        if self._wanted.pop(stream, None) is not None:
            self._wanted_changed()
        if self._acked.pop(stream, None) is not None:
            self._applied_changed()

    # -- what Envoy applied -------------------------------------------------------------

    def on_applied(self, listener: Callable[[], None]) -> None:
        """`listener()` whenever a stream ACKs, or one that had ACKed closes."""
        self._applied_listeners.append(listener)

    def acked(self, stream: str, resources: Mapping[str, SecretResource]) -> None:
        """`stream`'s Envoy ACKed `resources` (its latest response)."""
        self._acked[stream] = dict(resources)
        self._applied_changed()

    def _applied_changed(self) -> None:
        for listener in list(self._applied_listeners):
            listener()

    def applied(self) -> Applied:
        subscribed = [stream for stream, names in self._wanted.items() if ROOTCA in names]
        if subscribed:
            taken = [self._acked.get(stream, {}).get(ROOTCA) for stream in subscribed]
            common = set.intersection(*(set(r.roots) if r is not None else set() for r in taken))
            # Ordered as served.
            order = [fp for r in taken if r is not None for fp in r.roots]
            trusted = tuple(dict.fromkeys(fp for fp in order if fp in common))
        else:
            trusted = tuple(self.trust.fingerprints(self._clock()))
        cert_roots = {acked[DEFAULT].cert_root for stream, acked in self._acked.items()
                      if DEFAULT in acked and DEFAULT in self._wanted.get(stream, frozenset())
                      and acked[DEFAULT].cert_root}
        return Applied(trusted, tuple(sorted(cert_roots)))

    def _wanted_changed(self) -> None:
        if self._on_wanted is not None:
            self._on_wanted(frozenset().union(*self._wanted.values()))

    def put(self, resource: SecretResource) -> bool:
        """Serve `resource` under its name; True (and streams told) if its content changed."""
        current = self.resources.get(resource.name)
        if current is not None and current.version == resource.version:
            return False
        self.resources[resource.name] = resource
        self._notify()
        return True

    def drop(self, name: str) -> None:
        """Stop offering `name` (no stream asks for it any more); Envoy is not told."""
        self.resources.pop(name, None)

    def set_certificate(self, cert: WorkloadCert) -> None:
        self.cert = cert
        self.resources[DEFAULT] = tls_certificate(cert)
        self.trust.from_citadel(cert.root, self._clock())
        self._rebuild_roots()
        self._notify()

    def set_roots(self, roots: list[x509.Certificate], *, source: str = "kv") -> bool:
        """A new trust bundle from KV (or the `file`); True if the served roots changed."""
        changed = (self.trust.from_file if source == "file" else self.trust.from_kv)(roots, self._clock())
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
            self.resources[ROOTCA] = replace(validation_context(pem),
                                             roots=tuple(self.trust.fingerprints(self._clock())))
        log.info("trust bundle served", source=self.trust.source, roots=self.trust.fingerprints(self._clock()))

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()
