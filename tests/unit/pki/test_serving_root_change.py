"""A control-plane serving certificate follows citadel's root rotation: renewed early once
citadel's roots name a new signing root, and not again and again when they lag behind."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from cryptography import x509
from prometheus_client import CollectorRegistry

from libs.pki import ServingCertificate, ServingIdentity, SpiffeId, fingerprint, parse_key_type
from services.citadel.ca import CertificateAuthority, IssuancePolicy, self_signed_root

NOW = dt.datetime.now(dt.UTC)
IDENTITY = ServingIdentity(SpiffeId("cluster.local", "istio-system", "istio-pilot-service-account"),
                           ("istiod.istio-system.svc",))


def _ca() -> CertificateAuthority:
    return CertificateAuthority(self_signed_root(parse_key_type("ec-p256"), "cluster.local", now=NOW),
                                IssuancePolicy())


class Citadel:
    """Signs with `ca`; its roots file names `signing` first.  Counts what it is asked."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self.ca = ca
        self.signing = fingerprint(ca.bundle.root)
        self.requests = 0
        self.polls = 0
        self.asked = asyncio.Event()

    def signing_root(self) -> str | None:
        self.polls += 1
        self.asked.set()
        return self.signing

    async def create_certificate(self, csr_pem: str, ttl_s: int) -> list[str]:
        self.requests += 1
        self.asked.set()
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        return list(self.ca.issue_serving(csr.public_key(), IDENTITY.dns_names, ttl_s).chain)  # type: ignore[arg-type]

    async def until(self, check: Callable[[], bool], what: str) -> None:
        async def wait() -> None:
            while not check():
                self.asked.clear()
                await self.asked.wait()

        try:
            await asyncio.wait_for(wait(), timeout=5)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def polled(self, times: int) -> None:
        """Until the roots have been looked at `times` more times."""
        target = self.polls + times
        await self.until(lambda: self.polls >= target, f"{times} looks at the roots")


async def test_the_certificate_moves_to_the_new_signing_root_once() -> None:
    old, new, newest = _ca(), _ca(), _ca()
    # Citadel signs with `new` already, but its roots file still names `old` first (it lags).
    citadel = Citadel(new)
    citadel.signing = fingerprint(old.bundle.root)
    issued: list[str] = []
    certificate = ServingCertificate(citadel, IDENTITY, lambda i: issued.append(i.root_fingerprint),  # type: ignore[arg-type]
                                     CollectorRegistry(), metric_prefix="test", what="test", ttl_s=3600,
                                     rotation_fraction=0.5, retry_initial_s=0.01, retry_max_s=0.05,
                                     root_check_s=0.001)
    task = asyncio.create_task(certificate.run())
    try:
        await citadel.until(lambda: issued == [fingerprint(new.bundle.root)], "the first certificate")
        # Neither the lagging file nor its catching up asks for another certificate.
        await citadel.polled(20)
        citadel.signing = fingerprint(new.bundle.root)
        await citadel.polled(20)
        assert citadel.requests == 1
        # Citadel moves to another root and the file names it first: renewed, once.
        citadel.ca, citadel.signing = newest, fingerprint(newest.bundle.root)
        await citadel.until(lambda: len(issued) == 2, "the early renewal")
        assert issued[-1] == fingerprint(newest.bundle.root)
        await citadel.polled(20)
        assert citadel.requests == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
