"""The agent's report to citadel while it rotates its root: what this proxy's Envoy applied.

One entry in KV `mesh-trust-status` under the proxy's node id (`libs.pki.TrustReport`):
the roots every ROOTCA subscription of Envoy ACKed, and the roots of the certificates Envoy
may present.  Rewritten whenever Envoy ACKs (or a stream closes), and every
`interval_s`, because the bucket expires entries their holder stopped rewriting: a proxy
that went away never holds a rotation up.  A clean stop deletes the entry at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from libs.bus import MESH_TRUST_STATUS, TRUST_STATUS_TTL_S, Bus, BusError, KvBucket
from libs.pki import TrustReport, holder_key
from services.agent.sds_secrets import SecretStore

log = structlog.get_logger(__name__)


class TrustReporter:
    def __init__(self, node_id: str, trust_domain: str, store: SecretStore, *, interval_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.node_id = node_id
        self.trust_domain = trust_domain
        self.store = store
        self.interval_s = interval_s
        self.key = holder_key(node_id)
        self._clock = clock
        self._changed = asyncio.Event()
        self._bucket: KvBucket | None = None
        self._withdrawn = False
        store.on_applied(self._changed.set)

    def report(self) -> TrustReport:
        applied = self.store.applied()
        return TrustReport(self.node_id, self.trust_domain, applied.trusted, applied.cert_roots, self._clock())

    async def run(self, bus: Bus) -> None:
        self._bucket = await bus.kv(MESH_TRUST_STATUS, ttl_s=TRUST_STATUS_TTL_S, expiry_markers_s=TRUST_STATUS_TTL_S)
        last: TrustReport | None = None
        while not self._withdrawn:
            self._changed.clear()
            report = self.report()
            try:
                await self._bucket.put(self.key, report.to_json())
            except BusError as exc:
                log.warning("trust report not written; retrying", key=self.key, error=str(exc))
            else:
                if last is None or (last.trusted, last.cert_roots) != (report.trusted, report.cert_roots):
                    log.info("trust report written", key=self.key, trusted=[f[:16] for f in report.trusted],
                             cert_roots=[f[:16] for f in report.cert_roots])
                last = report
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self.interval_s)

    async def withdraw(self) -> None:
        """Delete the entry (a clean stop): this proxy is no holder any more."""
        self._withdrawn = True
        if self._bucket is None:
            return
        try:
            await self._bucket.delete(self.key)
        except BusError as exc:
            log.info("trust report not withdrawn; it will expire", key=self.key, error=str(exc))
