"""`mizzenctl x ca status`: citadel's /ca/rotation as lines a person reads."""

from __future__ import annotations

from tools.mizzenctl.ca import render

STATUS = {
    "trust_domain": "cluster.local", "rotatable": True, "phase": "published",
    "phase_since": "2030-01-01T00:00:00+00:00", "automatic_rotation_at": "2038-01-01T00:00:00+00:00",
    "reporting_holders": 25,
    "roots": [{"role": "signing", "fingerprint": "a" * 64, "subject": "CN=Mizzen root CA,O=cluster.local",
               "not_after": "2040-01-01T00:00:00+00:00"},
              {"role": "next", "fingerprint": "b" * 64, "subject": "CN=Mizzen root CA,O=cluster.local",
               "not_after": "2050-01-01T00:00:00+00:00"}],
    "step": {"action": "wait", "reason": "25 holder(s) do not trust the new root yet",
             "waiting_on": [f"sidecar/10.0.0.{i}/p{i}.default/default.svc.cluster.local" for i in range(20)],
             "waiting_count": 25, "check_at": None},
}


def test_status_names_the_phase_the_roots_and_who_it_waits_for() -> None:
    text = render(STATUS)
    assert "phase: published (since 2030-01-01T00:00:00+00:00)" in text
    assert "signing   aaaaaaaaaaaaaaaa" in text and "next      bbbbbbbbbbbbbbbb" in text
    assert "next: wait: 25 holder(s) do not trust the new root yet" in text
    assert text.rstrip().endswith("and 5 more")


def test_a_plugged_in_ca_is_said_to_be_the_operators() -> None:
    assert "plugged-in CA" in render({"trust_domain": "cluster.local", "rotatable": False})
