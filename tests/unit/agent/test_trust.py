"""The served trust bundle: citadel's root first, the KV bundle once seen, dropped roots retained."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from libs.pki import fingerprint
from services.agent.trust import TrustBundle
from tests.harness.pki import make_ca

NOW = dt.datetime.now(dt.UTC).timestamp()


def _root(name: str) -> x509.Certificate:
    return make_ca(name)[0]


def test_citadel_root_until_the_kv_bundle_rules() -> None:
    old, new = _root("old"), _root("new")
    bundle = TrustBundle(retention_s=100)
    assert bundle.from_citadel(old, NOW)
    assert bundle.roots(NOW) == [old]
    assert bundle.from_kv([old], NOW) is False, "the same root from KV changes nothing"
    assert bundle.from_citadel(new, NOW) is False, "once KV is seen, citadel's answer does not change trust"
    assert bundle.roots(NOW) == [old]


def test_a_dropped_root_is_retained_then_pruned() -> None:
    old, new = _root("old"), _root("new")
    bundle = TrustBundle(retention_s=100)
    bundle.from_kv([old], NOW)
    assert bundle.from_kv([new], NOW + 1)
    assert bundle.roots(NOW + 1) == [new, old], "during the rotation both roots are served"
    assert bundle.trusts(fingerprint(new)) and not bundle.trusts(fingerprint(old))
    assert bundle.next_deadline() == NOW + 101
    assert bundle.prune(NOW + 50) is False
    assert bundle.prune(NOW + 101) is True
    assert bundle.roots(NOW + 101) == [new]
    assert bundle.next_deadline() is None


def test_a_root_that_returns_is_no_longer_retained() -> None:
    old, new = _root("old"), _root("new")
    bundle = TrustBundle(retention_s=100)
    bundle.from_kv([old], NOW)
    bundle.from_kv([new], NOW)
    bundle.from_kv([new, old], NOW)
    assert bundle.retained == {}
    assert bundle.roots(NOW) == [new, old]


def test_expired_roots_are_never_served() -> None:
    expired = make_ca("expired", days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))[0]
    live = _root("live")
    bundle = TrustBundle(retention_s=100)
    bundle.from_kv([expired, live], NOW)
    assert bundle.roots(NOW) == [live]


def test_a_root_the_rotation_retired_goes_at_once() -> None:
    old, new = _root("old"), _root("new")
    bundle = TrustBundle(retention_s=100)
    bundle.from_kv([old], NOW)
    bundle.from_kv([old, new], NOW)  # published beside it
    assert bundle.signing() == fingerprint(old)
    bundle.from_kv([new, old], NOW)  # citadel signs with the new one
    assert bundle.signing() == fingerprint(new)
    assert bundle.from_kv([new], NOW) is True
    assert bundle.roots(NOW) == [new] and bundle.retained == {}, "retired by the rotation: not kept"


def test_the_file_rules_over_citadels_answer_and_kv_over_the_file() -> None:
    root, other = _root("root"), _root("other")
    bundle = TrustBundle(retention_s=100)
    assert bundle.signing() is None
    bundle.from_citadel(root, NOW)
    assert bundle.signing() is None, "citadel's answer names no signing root"
    assert bundle.from_file([root, other], NOW)
    assert bundle.source == "file" and bundle.signing() == fingerprint(root)
    assert bundle.from_citadel(other, NOW) is False
    bundle.from_kv([other], NOW)
    assert bundle.from_file([root], NOW) is False, "once KV is seen, the file does not change trust"
    assert bundle.signing() == fingerprint(other)
