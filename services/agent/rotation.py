"""Keeping the workload certificate fresh: obtain it, retry while citadel is away, and
renew at a fraction of its lifetime (or early, when the trust bundle drops its root)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.pki import CitadelError, CitadelRefused, SpiffeId, parse_key_type
from services.agent.errors import IdentityError
from services.agent.identity import WorkloadCert, accept_response, new_key_and_csr

log = structlog.get_logger(__name__)


class CertificateSigner(Protocol):
    async def create_certificate(self, csr_pem: str, ttl_s: int, metadata: dict[str, str]) -> list[str]: ...


@dataclass(frozen=True)
class RotationPolicy:
    key_type: str = "ec-p256"
    ttl_s: int = 86400
    fraction: float = 0.8
    retry_initial_s: float = 0.1
    retry_max_s: float = 30.0

    def __post_init__(self) -> None:
        parse_key_type(self.key_type)
        if self.ttl_s <= 0:
            raise ValueError(f"cert_ttl_s must be positive, not {self.ttl_s}")
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"cert_rotation_fraction must be between 0 and 1, not {self.fraction}")


class IdentityMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.issued = Counter("agent_workload_certs_obtained", "workload certificates obtained from citadel",
                              registry=registry)
        self.failures = Counter("agent_csr_failures", "CSR attempts that failed, by reason", ["reason"],
                                registry=registry)
        self.expiry = Gauge("agent_workload_cert_expiry_timestamp", "Unix time the served certificate expires",
                            registry=registry)


class IdentityManager:
    def __init__(self, identity: SpiffeId, signer: CertificateSigner, policy: RotationPolicy,
                 on_certificate: Callable[[WorkloadCert], None], *, metadata: dict[str, str] | None = None,
                 metrics: IdentityMetrics | None = None, clock: Callable[[], float] = time.time) -> None:
        self.identity = identity
        self.signer = signer
        self.policy = policy
        self.on_certificate = on_certificate
        self.metadata = metadata or {}
        self.metrics = metrics
        self.current: WorkloadCert | None = None
        self._clock = clock
        self._renew = asyncio.Event()

    def request_renewal(self, reason: str) -> None:
        """Renew now (e.g. the trust bundle no longer holds our root)."""
        log.info("certificate renewal requested", reason=reason)
        self._renew.set()

    async def run(self) -> None:
        while True:
            # Cleared before asking, not after: a renewal requested while a CSR is on its way
            # (citadel switched roots meanwhile) renews again right after it.
            self._renew.clear()
            cert = await self._obtain()
            self.current = cert
            self.on_certificate(cert)
            if self.metrics:
                self.metrics.issued.inc()
                self.metrics.expiry.set(cert.not_after)
            delay = cert.rotate_at(self.policy.fraction) - self._clock()
            log.info("workload certificate obtained", identity=self.identity.uri, serial=cert.serial,
                     not_after=cert.leaf.not_valid_after_utc.isoformat(), renew_in_s=round(delay, 3))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renew.wait(), timeout=max(delay, 0.0))

    async def _obtain(self) -> WorkloadCert:
        delay = self.policy.retry_initial_s
        while True:
            try:
                return await self._attempt()
            except (IdentityError, CitadelError) as exc:
                reason = exc.code if isinstance(exc, CitadelRefused) else type(exc).__name__
                if self.metrics:
                    self.metrics.failures.labels(reason).inc()
                expiring = self.current is not None and self.current.not_after - self._clock() < delay
                # A refusal needs an operator (new token, fixed identity); say so loudly.
                level = log.error if isinstance(exc, CitadelRefused) or expiring else log.warning
                level("getting a workload certificate failed; retrying", error=str(exc), retry_in_s=delay,
                      identity=self.identity.uri)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.policy.retry_max_s)

    async def _attempt(self) -> WorkloadCert:
        # A new key for every certificate: a renewal never reuses the old key.
        key, csr = new_key_and_csr(self.policy.key_type, self.identity)
        chain = await self.signer.create_certificate(csr, self.policy.ttl_s, self.metadata)
        return accept_response(chain, key, self.identity, received_at=self._clock())
