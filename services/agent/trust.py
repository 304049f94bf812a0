"""The roots the workload trusts (served to Envoy as ROOTCA), and their source on NATS.

Citadel's answer gives a first root; once the `mesh-trust` KV bundle for the trust domain
is seen it is authoritative.  A root that leaves the bundle stays trusted for
`retention_s` (or until it expires), because peers whose certificates it signed keep
them until they renew: during a root rotation the served bundle holds old and new roots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from libs.bus import MESH_TRUST, Bus, BusSettings, KvSynced
from libs.pki import InvalidPem, fingerprint, load_certs

log = structlog.get_logger(__name__)


@dataclass
class TrustBundle:
    retention_s: float
    source: str = "none"  # "none", "citadel" or "kv"
    current: dict[str, x509.Certificate] = field(default_factory=dict)
    # fingerprint -> (root, trusted until)
    retained: dict[str, tuple[x509.Certificate, float]] = field(default_factory=dict)

    def from_citadel(self, root: x509.Certificate, now: float) -> bool:
        """The root of a fresh chain; ignored once the KV bundle rules.  True if the bundle changed."""
        if self.source == "kv":
            return False
        self.source = "citadel"
        return self._replace([root], now)

    def from_kv(self, roots: list[x509.Certificate], now: float) -> bool:
        self.source = "kv"
        return self._replace(roots, now)

    def _replace(self, roots: list[x509.Certificate], now: float) -> bool:
        before = self.fingerprints(now)
        new = {fingerprint(r): r for r in roots}
        for fp, cert in self.current.items():
            if fp not in new:
                self.retained[fp] = (cert, now + self.retention_s)
        for fp in new:
            self.retained.pop(fp, None)
        self.current = new
        return self.fingerprints(now) != before

    def prune(self, now: float) -> bool:
        """Forget retained roots whose time is up; True if any went."""
        gone = [fp for fp, (_, until) in self.retained.items() if until <= now]
        for fp in gone:
            del self.retained[fp]
        return bool(gone)

    def next_deadline(self) -> float | None:
        return min((until for _, until in self.retained.values()), default=None)

    def roots(self, now: float) -> list[x509.Certificate]:
        """Current roots first, then retained ones; expired certificates never."""
        candidates = [*self.current.values(),
                      *(cert for _, (cert, until) in sorted(self.retained.items()) if until > now)]
        return [c for c in candidates if c.not_valid_after_utc.timestamp() > now]

    def fingerprints(self, now: float) -> list[str]:
        return [fingerprint(c) for c in self.roots(now)]

    def trusts(self, fp: str) -> bool:
        return fp in self.current

    def pem(self, now: float) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.roots(now))


async def watch_trust_bundle(nats_url: str, trust_domain: str,
                             on_roots: Callable[[list[x509.Certificate], int], None]) -> None:
    """Feed every version of the trust domain's bundle to `on_roots`; bad values are logged and skipped."""
    # NATS may come after the agent: wait for it, serving the root citadel returned meanwhile.
    bus = await Bus.connect(BusSettings(url=nats_url, connect_timeout_s=None), name="agent")
    try:
        bucket = await bus.kv(MESH_TRUST)
        async for event in bucket.watch(trust_domain):
            if isinstance(event, KvSynced):
                continue
            if event.value is None:
                # Losing the bundle must not mean trusting nothing: keep what we have.
                log.warning("trust bundle deleted from KV; keeping the current roots", key=trust_domain)
                continue
            try:
                roots = load_certs(event.value, what=f"{MESH_TRUST}/{trust_domain}")
            except InvalidPem as exc:
                log.error("ignoring an invalid trust bundle", key=trust_domain, revision=event.revision,
                          error=str(exc))
                continue
            on_roots(roots, event.revision)
    finally:
        await bus.close()
