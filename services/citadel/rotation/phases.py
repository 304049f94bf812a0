"""When a root rotation takes its next step: pure, from the roots, the holders' reports,
the policy and the time.  No I/O; `rotator.py` takes the steps.

    STABLE     begin when asked, or once less than `auto_fraction` of the root's life remains
    PUBLISHED  switch once every reporting holder's Envoy applied a ROOTCA holding the new
               root, and the phase has lasted `min_phase_s`
    SWITCHED   drop once no reporting holder presents a certificate from a retiring root (and
               each trusts the new one), and the phase has lasted `min_phase_s`

`min_phase_s` is the documented bound for the holders that cannot report: proxies without
NATS (on Kubernetes they read the `istio-ca-root-cert` ConfigMap, which the kubelet
refreshes within about two minutes) and the control plane's serving certificates (pilot's,
the injector's, galley's), which follow citadel's roots file within seconds.  A holder that
goes away stops refreshing its report, which then expires from `mesh-trust-status`: it never
holds a rotation up.  One that stays and never moves does, and is named in the step.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from libs.pki import TrustReport, fingerprint
from services.citadel.ca.roots import Phase, RootSet

# How many waiting holders a step names (the count is always given).
NAMED_HOLDERS = 20


class Action(enum.StrEnum):
    NONE = "none"  # nothing to do until `check_at` (the automatic trigger) or a request
    BEGIN = "begin"
    SWITCH = "switch"
    DROP = "drop"
    WAIT = "wait"  # a rotation is under way, waiting on holders or on time


@dataclass(frozen=True)
class RotationPolicy:
    # Rotate once less than this fraction of the root's life remains (Istio's self-signed
    # root rotator: CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE, 20%); 0: only on demand.
    auto_fraction: float = 0.2
    # Each phase lasts at least this long (the bound for holders that do not report).
    min_phase_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.auto_fraction < 1.0:
            raise ValueError(f"root_rotation_auto_fraction must be in [0, 1), not {self.auto_fraction}")
        if self.min_phase_s < 0:
            raise ValueError(f"root_rotation_min_phase_s must not be negative, not {self.min_phase_s}")


@dataclass(frozen=True)
class Step:
    action: Action
    reason: str
    waiting_on: tuple[str, ...] = ()  # up to NAMED_HOLDERS holders, sorted
    waiting_count: int = 0
    # Decide again at this time even if no report changes.
    check_at: dt.datetime | None = None


def auto_rotation_at(root: x509.Certificate, fraction: float) -> dt.datetime | None:
    """When less than `fraction` of the root's life remains; None when never automatic."""
    if fraction <= 0:
        return None
    start, end = root.not_valid_before_utc, root.not_valid_after_utc
    return end - (end - start) * fraction


def _waiting(action: str, pending: list[str]) -> Step:
    pending.sort()
    return Step(Action.WAIT, f"{len(pending)} holder(s) {action}", tuple(pending[:NAMED_HOLDERS]), len(pending))


def _timed(roots: RootSet, policy: RotationPolicy, now: dt.datetime, then: Action) -> Step:
    ready_at = roots.since + dt.timedelta(seconds=policy.min_phase_s)
    if now < ready_at:
        return Step(Action.WAIT, f"every reporting holder is ready; the {roots.phase} phase lasts at least "
                                 f"{policy.min_phase_s:g}s (for holders that do not report), until "
                                 f"{ready_at.isoformat()}", check_at=ready_at)
    return Step(then, f"every reporting holder is ready and the {roots.phase} phase has lasted "
                      f"{policy.min_phase_s:g}s")


def decide(roots: RootSet, reports: Iterable[TrustReport], policy: RotationPolicy, now: dt.datetime, *,
           trust_domain: str, requested: bool = False) -> Step:
    mine = [r for r in reports if r.trust_domain == trust_domain]
    if roots.phase is Phase.STABLE:
        if requested:
            return Step(Action.BEGIN, "a rotation was requested")
        due = auto_rotation_at(roots.root, policy.auto_fraction)
        if due is not None and now >= due:
            return Step(Action.BEGIN, f"the root expires at {roots.root.not_valid_after_utc.isoformat()}: less than "
                                      f"{policy.auto_fraction:.0%} of its life remains")
        return Step(Action.NONE, "one root, signing" + (f"; rotates at {due.isoformat()}" if due else ""),
                    check_at=due)
    if roots.phase is Phase.PUBLISHED:
        assert roots.next is not None
        new = fingerprint(roots.next.root)
        pending = [r.holder for r in mine if new not in r.trusted]
        if pending:
            return _waiting("do not trust the new root yet", pending)
        return _timed(roots, policy, now, Action.SWITCH)
    retiring = {fingerprint(c) for c in roots.retiring}
    signing = fingerprint(roots.root)
    pending = [r.holder for r in mine if retiring.intersection(r.cert_roots) or signing not in r.trusted]
    if pending:
        return _waiting("still present a certificate from the old root (or do not trust the new one)", pending)
    return _timed(roots, policy, now, Action.DROP)
