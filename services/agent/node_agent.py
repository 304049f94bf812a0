"""Istio's node agent inside the agent: the workload identity (key, CSR, rotation) and the
trust bundle watch, feeding `default` and `ROOTCA` into the SDS server's secret store, run
under the supervisor.

The SDS socket (`sds_setup`) is bound before Envoy starts, so Envoy's first SDS request is
answered as soon as the certificate is in (no reconnect backoff); the CSR then runs while
Envoy boots.

Citadel's root rotation, seen from here: the trust bundle (from `citadel_root_cert`, polled,
and from KV `mesh-trust`) gains the new root, which reaches Envoy as ROOTCA; when the
bundle names another root first (citadel signs with it now) the certificate is renewed at
once; when the old root leaves, it leaves ROOTCA.  With NATS the agent reports what Envoy
ACKed in `mesh-trust-status` (`trust_report`), which is what citadel waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from cryptography import x509
from prometheus_client import CollectorRegistry

from libs.bus import Bus, BusSettings
from libs.pki import InvalidPem, PkiError, SpiffeId, load_certs
from libs.runtime import Backoff, Readiness, Supervisor
from services.agent.citadel_client import citadel_client
from services.agent.errors import ConfigurationError
from services.agent.identity import WorkloadCert
from services.agent.rotation import IdentityManager, IdentityMetrics, RotationPolicy
from services.agent.sds_secrets import SecretStore
from services.agent.settings import AgentSettings
from services.agent.trust import watch_trust_bundle
from services.agent.trust_report import TrustReporter

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
        self.store = store
        self.client = citadel_client(settings, extra_roots=lambda: store.trust.pem(time.time()))
        self.reporter = TrustReporter(settings.node_id, settings.trust_domain, store,
                                      interval_s=settings.trust_report_interval_s)
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
        self._roots_changed(roots, "kv", revision=revision)

    def _roots_changed(self, roots: list[x509.Certificate], source: str, **where: object) -> None:
        changed = self.store.set_roots(roots, source=source)
        log.info("trust bundle received", source=source, roots=len(roots), changed=changed, **where)
        self._trust_changed.set()
        current = self.manager.current
        if not changed or current is None:
            return
        signing = self.store.trust.signing()
        if not self.store.trust.trusts(current.root_fingerprint):
            self.manager.request_renewal("the trust bundle no longer holds the root of our certificate")
        elif signing is not None and signing != current.root_fingerprint:
            self.manager.request_renewal("citadel signs with another root now (the bundle names it first)")

    async def _watch_root_file(self) -> None:
        """citadel_root_cert as a trust source: re-read every root_cert_poll_interval_s."""
        path = self.settings.citadel_root_cert
        assert path is not None, "citadel_client() refuses settings without it"
        seen = b""
        while True:
            try:
                data = path.read_bytes()
            except OSError as exc:
                log.debug("citadel_root_cert not readable now", path=str(path), error=str(exc))
                data = seen
            if data != seen:
                try:
                    roots = load_certs(data, what=str(path))
                except InvalidPem as exc:
                    log.warning("ignoring citadel_root_cert until it holds certificates", path=str(path),
                                error=str(exc))
                else:
                    self._roots_changed(roots, "file", path=str(path))
                seen = data
            if self.settings.root_cert_poll_interval_s <= 0:
                return
            await asyncio.sleep(self.settings.root_cert_poll_interval_s)

    async def _trust_on_nats(self) -> None:
        """One NATS connection for the trust bundle's watch and this proxy's trust report."""
        # NATS may come after the agent: wait for it, serving the roots we have meanwhile.
        bus = await Bus.connect(BusSettings(url=self.settings.trust_nats_url, connect_timeout_s=None), name="agent")
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(watch_trust_bundle(bus, self.settings.trust_domain, self._on_roots),
                                  name="trust-bundle-watch")
                tasks.create_task(self.reporter.run(bus), name="trust-report")
        finally:
            await bus.close()

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
        supervisor.start("trust-file", self._watch_root_file, restart=Backoff(initial_s=0.5, maximum_s=10.0))
        if self.settings.trust_nats_url:
            supervisor.start("trust-bundle", self._trust_on_nats, restart=Backoff(initial_s=0.5, maximum_s=10.0))
            supervisor.on_stop("trust-report", self.reporter.withdraw)
        log.info("node agent started", identity=self.identity.uri, citadel=self.settings.citadel_address)
