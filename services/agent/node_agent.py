"""Istio's node agent inside the agent: the workload identity (key, CSR, rotation) and the
trust bundle watch, feeding `default` and `ROOTCA` into the SDS server's secret store, run
under the supervisor.

The SDS socket (`sds_setup`) is bound before Envoy starts, so Envoy's first SDS request is
answered as soon as the certificate is in (no reconnect backoff); the CSR then runs while
Envoy boots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from cryptography import x509
from prometheus_client import CollectorRegistry

from libs.pki import PkiError, SpiffeId
from libs.runtime import Backoff, Readiness, Supervisor
from services.agent.citadel_client import citadel_client
from services.agent.errors import ConfigurationError
from services.agent.identity import WorkloadCert
from services.agent.rotation import IdentityManager, IdentityMetrics, RotationPolicy
from services.agent.sds_secrets import SecretStore
from services.agent.settings import AgentSettings
from services.agent.trust import watch_trust_bundle

log = structlog.get_logger(__name__)

CERT_READY = "workload-cert"


class NodeAgent:
    def __init__(self, settings: AgentSettings, registry: CollectorRegistry, readiness: Readiness,
                 store: SecretStore) -> None:
        """Check the identity settings and build the parts; raises ConfigurationError."""
        self.settings = settings
        self.readiness = readiness
        try:
            self.identity = SpiffeId(settings.trust_domain, settings.namespace, settings.service_account)
            policy = RotationPolicy(key_type=settings.workload_key_type, ttl_s=settings.cert_ttl_s,
                                    fraction=settings.cert_rotation_fraction,
                                    retry_initial_s=settings.citadel_retry_initial_s,
                                    retry_max_s=settings.citadel_retry_max_s)
        except (PkiError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from exc
        self.client = citadel_client(settings)
        self.store = store
        self.manager = IdentityManager(
            self.identity, self.client, policy, self._on_certificate, metrics=IdentityMetrics(registry),
            metadata={"WorkloadName": settings.pod_name, "WorkloadIP": settings.instance_ip})
        self._trust_changed = asyncio.Event()
        readiness.require(CERT_READY)

    def _on_certificate(self, cert: WorkloadCert) -> None:
        self.store.set_certificate(cert)
        self.readiness.mark(CERT_READY)
        self._trust_changed.set()

    def _on_roots(self, roots: list[x509.Certificate], revision: int) -> None:
        changed = self.store.set_roots(roots)
        log.info("trust bundle received", revision=revision, roots=len(roots), changed=changed)
        self._trust_changed.set()
        current = self.manager.current
        if changed and current is not None and not self.store.trust.trusts(current.root_fingerprint):
            self.manager.request_renewal("the trust bundle no longer holds the root of our certificate")

    async def _expire_retained_roots(self) -> None:
        while True:
            deadline = self.store.trust.next_deadline()
            timeout = None if deadline is None else max(deadline - time.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trust_changed.wait(), timeout=timeout)
            self._trust_changed.clear()
            self.store.prune()

    async def start(self, supervisor: Supervisor) -> None:
        supervisor.on_stop("citadel-client", self.client.close)
        supervisor.start("identity", self.manager.run)
        supervisor.start("trust-retention", self._expire_retained_roots)
        if self.settings.trust_nats_url:
            supervisor.start("trust-bundle", lambda: watch_trust_bundle(
                self.settings.trust_nats_url, self.settings.trust_domain, self._on_roots),
                restart=Backoff(initial_s=0.5, maximum_s=10.0))
        log.info("node agent started", identity=self.identity.uri, citadel=self.settings.citadel_address)
