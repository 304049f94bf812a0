"""The rotation driven: follow the holders' reports, decide (`phases.decide`), take each
step, and publish the trust bundle after it.

A step is taken in this order: the CA in memory first (so that nothing names a root first
before citadel signs with it: a reader of the bundle that renews gets a certificate from
the root it expects), then the store (the step's commit point; on failure the CA in memory
goes back and the task fails, to be restarted with backoff), then the bundle in KV
`mesh-trust` and, on Kubernetes, in the `istio-ca-root-cert` ConfigMaps and webhook
caBundles.  The file store's root-cert.pem is the bundle itself, written with the step.
A restarted citadel reads the phase back from the store and carries on.

The same task publishes the bundle for a plugged-in CA (cacerts), which is never rotated
here: its roots are the operator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from libs.bus import (
    MESH_TRUST,
    MESH_TRUST_STATUS,
    TRUST_STATUS_TTL_S,
    Bus,
    BusSettings,
    KeyNotFound,
    KvBucket,
    KvMirror,
)
from libs.pki import KeyType, TrustReport, fingerprint
from services.citadel.ca import utc_now
from services.citadel.ca.root import self_signed_root
from services.citadel.ca.roots import Phase, RootSet
from services.citadel.ca.store import RootStore, same_roots
from services.citadel.errors import RotationError
from services.citadel.metrics import CitadelMetrics
from services.citadel.rotation.phases import Action, RotationPolicy, Step, auto_rotation_at, decide

log = structlog.get_logger(__name__)

# Decide again at least this often: the automatic trigger is years away, and clocks jump.
MAX_IDLE_S = 3600.0
PHASE_VALUES = {Phase.STABLE: 0, Phase.PUBLISHED: 1, Phase.SWITCHED: 2}


@dataclass
class Rotatable:
    """What a rotation needs that a plugged-in CA does not have."""

    store: RootStore
    roots: RootSet
    key_type: KeyType
    root_ttl: dt.timedelta
    # Called with the new roots before they are stored; `switched` when the signing root changed.
    install: Callable[[RootSet, bool], None]


@dataclass
class RootRotator:
    nats_url: str
    trust_domain: str
    policy: RotationPolicy
    metrics: CitadelMetrics
    rotatable: Rotatable | None
    # The bundle of a plugged-in CA (used only without `rotatable`).
    fixed_bundle_pem: str = ""
    # After each publication to KV: the ConfigMaps and webhook caBundles (Kubernetes).
    on_published: Callable[[str], Awaitable[None]] | None = None
    clock: Callable[[], dt.datetime] = utc_now
    requested: bool = False
    last_step: Step | None = None
    reports: list[TrustReport] = field(default_factory=list)
    published_revision: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def bundle_pem(self) -> str:
        return self.rotatable.roots.trust_bundle_pem() if self.rotatable else self.fixed_bundle_pem

    def request(self) -> None:
        """Begin a rotation as soon as the task runs (RotationError when none is possible)."""
        if self.rotatable is None:
            raise RotationError("citadel signs with a plugged-in CA (cacerts): its roots are rotated by replacing "
                                "the files (root-cert.pem holding the old and the new root), not by citadel")
        if self.rotatable.roots.phase is Phase.STABLE:
            self.requested = True
            log.info("root rotation requested")
            self._wake.set()

    # -- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish the bundle, then follow the reports and rotate, until cancelled."""
        if self.rotatable is not None:
            await self._reload(self.rotatable)
        bus = await Bus.connect(BusSettings(url=self.nats_url, connect_timeout_s=None), name="citadel")
        try:
            trust = await bus.kv(MESH_TRUST)
            await self._publish(trust)
            if self.rotatable is None:
                return  # a plugged-in CA: published once, nothing to rotate
            statuses = await bus.kv(MESH_TRUST_STATUS, ttl_s=TRUST_STATUS_TTL_S, expiry_markers_s=TRUST_STATUS_TTL_S)
            mirror = KvMirror(statuses, on_change=self._wake.set)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(mirror.run(), name="trust-status-mirror")
                while not mirror.synced:
                    self._wake.clear()
                    await self._wake.wait()
                await self._follow(mirror, trust)
        finally:
            await bus.close()

    async def _reload(self, rotatable: Rotatable) -> None:
        """Follow the store if it moved on without us (another citadel sharing it took a step,
        which is also why a step of ours may have been refused before this restart)."""
        stored = await rotatable.store.create_roots(rotatable.key_type, self.trust_domain, self.clock(),
                                                    ttl=rotatable.root_ttl)
        if same_roots(stored, rotatable.roots):
            return
        log.info("the roots changed in the store; following them", phase=str(stored.phase),
                 signing_root=fingerprint(stored.root)[:16])
        rotatable.install(stored, fingerprint(stored.root) != fingerprint(rotatable.roots.root))
        rotatable.roots = stored
        self.metrics.rotation_phase.set(PHASE_VALUES[stored.phase])

    async def _follow(self, mirror: KvMirror, trust: KvBucket) -> None:
        assert self.rotatable is not None
        while True:
            self._wake.clear()
            self.reports = mirror.decode(TrustReport.from_json)
            now = self.clock()
            step = decide(self.rotatable.roots, self.reports, self.policy, now, trust_domain=self.trust_domain,
                          requested=self.requested)
            self._record(step)
            if step.action in (Action.BEGIN, Action.SWITCH, Action.DROP):
                await self._take(step, trust)
                continue
            idle = MAX_IDLE_S if step.check_at is None else (step.check_at - now).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(max(idle, 0.0), MAX_IDLE_S))

    def _record(self, step: Step) -> None:
        previous = self.last_step
        self.last_step = step
        self.metrics.rotation_waiting.set(step.waiting_count)
        if previous is None or (previous.action, previous.reason) != (step.action, step.reason):
            level = log.info if step.action is not Action.NONE else log.debug
            level("root rotation", phase=str(self.rotatable.roots.phase) if self.rotatable else "fixed",
                  action=str(step.action), reason=step.reason, waiting_on=list(step.waiting_on))

    async def _take(self, step: Step, trust: KvBucket) -> None:
        assert self.rotatable is not None
        rotatable, now = self.rotatable, self.clock()
        old = rotatable.roots
        if step.action is Action.BEGIN:
            new = old.begin(self_signed_root(rotatable.key_type, self.trust_domain, now=now, ttl=rotatable.root_ttl,
                                             successor=True), now)
        elif step.action is Action.SWITCH:
            new = old.switch(now)
        else:
            new = old.drop(now)
        switched = fingerprint(new.root) != fingerprint(old.root)
        rotatable.install(new, switched)
        try:
            await rotatable.store.save_roots(new, old, now)
        except Exception:
            rotatable.install(old, switched)
            raise
        rotatable.roots = new
        if step.action is Action.BEGIN:
            self.requested = False
        self.metrics.rotation_phase.set(PHASE_VALUES[new.phase])
        self.metrics.rotation_steps.labels(str(step.action)).inc()
        log.info("root rotation step taken", step=str(step.action), phase=str(new.phase), reason=step.reason,
                 signing_root=fingerprint(new.root)[:16], trusted=[f[:16] for f in new.fingerprints()])
        await self._publish(trust)

    async def _publish(self, trust: KvBucket) -> None:
        pem = self.bundle_pem
        try:
            current = await trust.get(self.trust_domain)
        except KeyNotFound:
            current = None
        # An unchanged bundle keeps its revision: agents see no change on a citadel restart.
        if current is not None and current.value == pem.encode():
            revision = current.revision
        else:
            revision = await trust.put(self.trust_domain, pem.encode())
        self.published_revision = revision
        self.metrics.trust_bundle_revision.set(revision)
        log.info("trust bundle published", bucket=MESH_TRUST, key=self.trust_domain, revision=revision,
                 roots=pem.count("BEGIN CERTIFICATE"))
        if self.on_published is not None:
            await self.on_published(pem)

    # -- what /ca/rotation shows ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"trust_domain": self.trust_domain, "rotatable": self.rotatable is not None,
                                "trust_bundle_revision": self.published_revision, "requested": self.requested,
                                "reporting_holders": len([r for r in self.reports
                                                          if r.trust_domain == self.trust_domain])}
        if self.rotatable is not None:
            roots = self.rotatable.roots
            roles = [("signing", roots.root)]
            roles += [("next", roots.next.root)] if roots.next is not None else []
            roles += [("retiring", c) for c in roots.retiring]
            due = auto_rotation_at(roots.root, self.policy.auto_fraction)
            body.update({
                "phase": str(roots.phase), "phase_since": roots.since.isoformat(),
                "min_phase_s": self.policy.min_phase_s,
                "automatic_rotation_at": due.isoformat() if due else None,
                "roots": [{"role": role, "fingerprint": fingerprint(cert), "subject": cert.subject.rfc4514_string(),
                           "not_after": cert.not_valid_after_utc.isoformat()} for role, cert in roles],
            })
        step = self.last_step
        if step is not None:
            body["step"] = {"action": str(step.action), "reason": step.reason, "waiting_on": list(step.waiting_on),
                            "waiting_count": step.waiting_count,
                            "check_at": step.check_at.isoformat() if step.check_at else None}
        return body
