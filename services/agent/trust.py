"""The roots the workload trusts (served to Envoy as ROOTCA), and their sources.

Three sources, each overruling the ones before it once seen: the root of citadel's answer,
the `citadel_root_cert` file (on Kubernetes the mounted `istio-ca-root-cert` ConfigMap,
which citadel keeps holding its bundle), and the `mesh-trust` KV bundle for the trust
domain.  A bundle lists the root citadel signs with first (`signing`): a certificate from
another root is renewed.

A root that leaves the bundle while it was the first (a bundle replaced without a
rotation, or citadel's answer overruled) stays trusted for `retention_s` (or until it
expires), because peers whose certificates it signed keep them until they renew.  A root
that leaves when it was no longer first was retired by citadel's rotation, which drops it
only once no proxy presents a certificate from it: it goes at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from libs.bus import MESH_TRUST, Bus, KvSynced
from libs.pki import InvalidPem, fingerprint, load_certs

log = structlog.get_logger(__name__)


# Each source overrules those ranked below it.
SOURCES = {"none": 0, "citadel": 1, "file": 2, "kv": 3}


@dataclass
class TrustBundle:
    retention_s: float
    source: str = "none"  # "none", "citadel", "file" or "kv"
    current: dict[str, x509.Certificate] = field(default_factory=dict)
    # fingerprint -> (root, trusted until)
    retained: dict[str, tuple[x509.Certificate, float]] = field(default_factory=dict)

    def from_citadel(self, root: x509.Certificate, now: float) -> bool:
        """The root of a fresh chain; ignored once a bundle rules.  True if the bundle changed."""
        return self._from("citadel", [root], now)

    def from_file(self, roots: list[x509.Certificate], now: float) -> bool:
        """citadel_root_cert's bundle; ignored once the KV bundle rules."""
        return self._from("file", roots, now)

    def from_kv(self, roots: list[x509.Certificate], now: float) -> bool:
        return self._from("kv", roots, now)

    def _from(self, source: str, roots: list[x509.Certificate], now: float) -> bool:
        if SOURCES[self.source] > SOURCES[source]:
            return False
        self.source = source
        return self._replace(roots, now)

    def signing(self) -> str | None:
        """Fingerprint of the root citadel signs with, when a bundle (not citadel's answer) says."""
        if self.source not in ("file", "kv"):
            return None
        return next(iter(self.current), None)

    def _replace(self, roots: list[x509.Certificate], now: float) -> bool:
        before = self.fingerprints(now)
        new = {fingerprint(r): r for r in roots}
        first = next(iter(self.current), None)
        for fp, cert in self.current.items():
            if fp not in new and fp == first:
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


async def watch_trust_bundle(bus: Bus, trust_domain: str,
                             on_roots: Callable[[list[x509.Certificate], int], None]) -> None:
    """Feed every version of the trust domain's bundle to `on_roots`; bad values are logged and skipped."""
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
