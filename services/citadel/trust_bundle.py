"""Publishing the trust bundle: every root the mesh trusts, as PEM, in KV `mesh-trust`
under the trust domain's key.  Agents watch that key and serve it to Envoy as ROOTCA."""

from __future__ import annotations

import structlog

from libs.bus import MESH_TRUST, Bus, BusSettings, KeyNotFound
from services.citadel.metrics import CitadelMetrics

log = structlog.get_logger(__name__)


async def publish_trust_bundle(nats_url: str, trust_domain: str, bundle_pem: str, metrics: CitadelMetrics) -> None:
    """Write the bundle once; the supervisor retries with backoff while NATS is away."""
    # NATS may come after citadel: wait for it (CSRs are served meanwhile).
    bus = await Bus.connect(BusSettings(url=nats_url, connect_timeout_s=None), name="citadel")
    try:
        bucket = await bus.kv(MESH_TRUST)
        try:
            current = await bucket.get(trust_domain)
        except KeyNotFound:
            current = None
        # An unchanged bundle keeps its revision: agents see no change on a citadel restart.
        if current is not None and current.value == bundle_pem.encode():
            revision = current.revision
        else:
            revision = await bucket.put(trust_domain, bundle_pem.encode())
        metrics.trust_bundle_revision.set(revision)
        log.info("trust bundle published", bucket=MESH_TRUST, key=trust_domain, revision=revision,
                 roots=bundle_pem.count("BEGIN CERTIFICATE"))
    finally:
        await bus.close()
