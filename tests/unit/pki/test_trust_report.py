"""The trust report a holder writes for citadel's root rotation: JSON both ways, and its key."""

from __future__ import annotations

import pytest

from libs.pki import TrustReport, holder_key


def test_a_report_survives_json() -> None:
    report = TrustReport("sidecar~10.0.0.1~web-1.default~default.svc.cluster.local", "cluster.local",
                         ("a" * 64, "b" * 64), ("a" * 64,), 1700000000.5)
    assert TrustReport.from_json(report.to_json()) == report


@pytest.mark.parametrize(("data", "message"), [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"holder": "x", "trust_domain": "t", "trusted": [], "reported_at": 1}', "lacks 'cert_roots'"),
    (b'{"holder": "x", "trust_domain": "t", "trusted": "a", "cert_roots": [], "reported_at": 1}', "must be lists"),
])
def test_a_bad_report_says_why(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrustReport.from_json(data)


def test_the_key_is_a_valid_kv_key() -> None:
    assert holder_key("sidecar~10.0.0.1~web-1.default~default.svc.cluster.local") == (
        "sidecar/10.0.0.1/web-1.default/default.svc.cluster.local")
    assert holder_key("router~::1~gw..x*y~ns") == "router/__1/gw._.x_y/ns"
