"""Citadel's root rotation, pure: the roots through every phase, and when each step is taken."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from libs.pki import TrustReport, cert_pem, fingerprint, parse_key_type
from services.citadel.ca.root import self_signed_root
from services.citadel.ca.roots import Phase, RootSet, stable
from services.citadel.errors import RotationError
from services.citadel.rotation import Action, RotationPolicy, auto_rotation_at, decide

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
TD = "cluster.local"
POLICY = RotationPolicy(auto_fraction=0.2, min_phase_s=60)
KEY = parse_key_type("ec-p256")


def _root(*, days: int = 3650, now: dt.datetime = NOW, successor: bool = False) -> RootSet:
    return stable(self_signed_root(KEY, TD, now=now, ttl=dt.timedelta(days=days), successor=successor), now)


def _report(holder: str, trusted: Sequence[RootSet | str], cert_roots: Sequence[str] = (), *,
            trust_domain: str = TD) -> TrustReport:
    prints = tuple(t if isinstance(t, str) else fingerprint(t.root) for t in trusted)
    return TrustReport(holder, trust_domain, prints, tuple(cert_roots), NOW.timestamp())


@pytest.fixture
def old() -> RootSet:
    return _root()


@pytest.fixture
def published(old: RootSet) -> RootSet:
    return old.begin(self_signed_root(KEY, TD, now=NOW, successor=True), NOW)


def test_the_bundle_through_a_rotation_names_the_signing_root_first(old: RootSet, published: RootSet) -> None:
    a = fingerprint(old.root)
    assert published.next is not None
    b = fingerprint(published.next.root)
    assert published.phase is Phase.PUBLISHED and published.fingerprints() == (a, b)
    assert fingerprint(published.ca_bundle().signing_cert) == a, "the old root still signs"
    switched = published.switch(NOW)
    assert switched.phase is Phase.SWITCHED and switched.fingerprints() == (b, a)
    assert fingerprint(switched.ca_bundle().signing_cert) == b
    assert switched.ca_bundle().trust_bundle_pem() == switched.trust_bundle_pem()
    dropped = switched.drop(NOW)
    assert dropped.phase is Phase.STABLE and dropped.fingerprints() == (b,)
    assert dropped.trust_bundle_pem() == cert_pem(switched.root)
    # The successor is named apart from the root it replaces.
    assert published.next.root.subject != old.root.subject


def test_steps_out_of_order_are_refused(old: RootSet, published: RootSet) -> None:
    with pytest.raises(RotationError, match="already under way"):
        published.begin(self_signed_root(KEY, TD, now=NOW), NOW)
    with pytest.raises(RotationError, match="no published root"):
        old.switch(NOW)
    with pytest.raises(RotationError, match="nothing to drop"):
        published.drop(NOW)


def test_stable_waits_for_a_request_or_the_automatic_threshold(old: RootSet) -> None:
    step = decide(old, [], POLICY, NOW, trust_domain=TD)
    due = auto_rotation_at(old.root, 0.2)
    assert step.action is Action.NONE and step.check_at == due
    assert due is not None and old.root.not_valid_after_utc - due == (
        old.root.not_valid_after_utc - old.root.not_valid_before_utc) * 0.2
    assert decide(old, [], POLICY, NOW, trust_domain=TD, requested=True).action is Action.BEGIN
    late = decide(old, [], POLICY, due + dt.timedelta(seconds=1), trust_domain=TD)
    assert late.action is Action.BEGIN and "less than 20% of its life remains" in late.reason
    never = decide(old, [], RotationPolicy(auto_fraction=0, min_phase_s=60), due, trust_domain=TD)
    assert never.action is Action.NONE and never.check_at is None


def test_published_switches_once_every_holder_trusts_the_new_root_and_the_phase_has_lasted(
        old: RootSet, published: RootSet) -> None:
    assert published.next is not None
    new = fingerprint(published.next.root)
    reports = [_report("sidecar/10.0.0.1/a.default/x", [old, new]), _report("sidecar/10.0.0.2/b.default/x", [old])]
    step = decide(published, reports, POLICY, NOW + dt.timedelta(hours=1), trust_domain=TD)
    assert step.action is Action.WAIT and step.waiting_on == ("sidecar/10.0.0.2/b.default/x",)
    assert step.waiting_count == 1 and "do not trust the new root" in step.reason
    # Every holder trusts it; the phase must still last min_phase_s.
    reports[1] = _report("sidecar/10.0.0.2/b.default/x", [old, new])
    early = decide(published, reports, POLICY, NOW + dt.timedelta(seconds=10), trust_domain=TD)
    assert early.action is Action.WAIT and early.check_at == NOW + dt.timedelta(seconds=60)
    assert early.waiting_on == ()
    assert decide(published, reports, POLICY, NOW + dt.timedelta(seconds=60), trust_domain=TD).action is Action.SWITCH


def test_reports_of_another_trust_domain_do_not_count(published: RootSet) -> None:
    stranger = _report("sidecar/10.0.0.9/c.other/x", ["f" * 64], trust_domain="other.example")
    later = NOW + dt.timedelta(minutes=5)
    assert decide(published, [stranger], POLICY, later, trust_domain=TD).action is Action.SWITCH


def test_switched_drops_once_nobody_presents_an_old_certificate(old: RootSet, published: RootSet) -> None:
    switched = published.switch(NOW)
    a, b = fingerprint(old.root), fingerprint(switched.root)
    later = NOW + dt.timedelta(minutes=5)
    reports = [_report("web", [b, a], [a]), _report("db", [b, a], [b]), _report("starting", [b, a], [])]
    step = decide(switched, reports, POLICY, later, trust_domain=TD)
    assert step.action is Action.WAIT and step.waiting_on == ("web",)
    assert "certificate from the old root" in step.reason
    # Mid-renewal (one stream still holds the old certificate) is still waiting.
    reports[0] = _report("web", [b, a], [a, b])
    assert decide(switched, reports, POLICY, later, trust_domain=TD).waiting_on == ("web",)
    # A holder that does not trust the signing root yet is waited for too.
    reports[0] = _report("web", [a], [b])
    assert decide(switched, reports, POLICY, later, trust_domain=TD).waiting_on == ("web",)
    reports[0] = _report("web", [b, a], [b])
    assert decide(switched, reports, POLICY, later, trust_domain=TD).action is Action.DROP
    assert decide(switched, reports, POLICY, NOW + dt.timedelta(seconds=59),
                  trust_domain=TD).action is Action.WAIT


def test_a_long_wait_names_twenty_holders_and_counts_them_all(published: RootSet, old: RootSet) -> None:
    reports = [_report(f"sidecar/10.0.1.{i}/p{i:03}.default/x", [old]) for i in range(50)]
    step = decide(published, reports, POLICY, NOW + dt.timedelta(hours=1), trust_domain=TD)
    assert step.waiting_count == 50 and len(step.waiting_on) == 20
    assert list(step.waiting_on) == sorted(step.waiting_on)


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="auto_fraction"):
        RotationPolicy(auto_fraction=1.0)
    with pytest.raises(ValueError, match="min_phase_s"):
        RotationPolicy(min_phase_s=-1)
