"""`mizzenctl proxy-status` formatting: istioctl's sync states, the table, NACK lines, and
pilot's view compared with Envoy's, from documents captured from a real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.mizzenctl import config_diff, proxy_status
from tools.mizzenctl.table import render

DATA = Path(__file__).parent / "testdata"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def state(sent: str, acked: str, *, awaiting: bool = False, nack: str | None = None) -> dict[str, Any]:
    return {"sent": sent, "acked": acked, "awaiting_ack": awaiting,
            "last_nack": None if nack is None else {"version": nack, "nonce": "1-9", "error": "bad"}}


@pytest.mark.parametrize(("watch", "expected"), [
    (None, "NOT SENT"),
    (state("", ""), "NOT SENT"),
    (state("7", "7"), "SYNCED"),
    (state("7", "6", awaiting=True), "STALE"),
    (state("7", "", awaiting=True), "STALE (Never Acknowledged)"),
    # The same version resent (new resource names) and not answered yet.
    (state("7", "7", awaiting=True), "STALE"),
    (state("7", "6", nack="7"), "STALE (NACK)"),
    # A NACKed version, then a newer one sent and not ACKed yet: stale, no longer rejected.
    (state("8", "6", awaiting=True, nack="7"), "STALE"),
    # An old NACK, since superseded by an ACKed version.
    (state("8", "8", nack="7"), "SYNCED"),
])
def test_xds_status_follows_istioctl(watch: dict[str, Any] | None, expected: str) -> None:
    assert proxy_status.xds_status(watch) == expected


def test_synced_table() -> None:
    table = render(proxy_status.HEADER, proxy_status.status_rows(load("syncz_synced.json")["proxies"]))
    assert table == (
        "NAME                            CLUSTER        CDS        LDS        EDS        RDS        ISTIOD       "
        "VERSION     LAST CONVERGENCE\n"
        "ingressgateway.istio-system     Kubernetes     SYNCED     SYNCED     SYNCED     SYNCED     vm-15055     "
        "1.40.0      0.003s\n")


def test_nack_is_shown_with_envoys_error() -> None:
    rows = load("syncz_nack.json")["proxies"]
    (row,) = proxy_status.status_rows(rows)
    assert row[2:6] == ("SYNCED", "SYNCED", "SYNCED", "STALE (NACK)")
    assert proxy_status.nack_lines(rows) == [
        "ingressgateway.istio-system RDS rejected version 5 (nonce 1-10): "
        "Not supported field in StreamInfo: NOT_A_VARIABLE"]
    (as_json,) = proxy_status.status_json(rows)
    assert as_json["RDS"] == "STALE (NACK)"
    assert as_json["nacks"]["RDS"]["error"] == "Not supported field in StreamInfo: NOT_A_VARIABLE"


def test_rows_sort_by_cluster_then_name_and_unknown_convergence_is_a_dash() -> None:
    (base,) = load("syncz_synced.json")["proxies"]
    others = [dict(base, name="a.default", cluster_id="Kubernetes", convergence_s=None),
              dict(base, name="z.default", cluster_id="Another")]
    rows = proxy_status.status_rows([base, *others])
    assert [(r[0], r[1]) for r in rows] == [("z.default", "Another"), ("a.default", "Kubernetes"),
                                          ("ingressgateway.istio-system", "Kubernetes")]
    assert rows[1][-1] == "-"


def test_select_prefers_exact_names() -> None:
    rows = [{"proxy": "router~1~gw.ns~d", "name": "gw.ns"}, {"proxy": "router~1~gw2.ns~d", "name": "gw2.ns"}]
    assert [r["name"] for r in proxy_status.select(rows, "gw")] == ["gw.ns"]
    assert [r["name"] for r in proxy_status.select(rows, "gw2.ns")] == ["gw2.ns"]
    assert [r["name"] for r in proxy_status.select(rows, "ns")] == ["gw.ns", "gw2.ns"]


def test_pilot_and_envoy_match_once_synced() -> None:
    sent = {t: s["sent"] for t, s in load("syncz_synced.json")["proxies"][0]["types"].items()}
    diffs = config_diff.compare(load("pilot_config_dump.json"), load("envoy_config_dump.json"), sent)
    assert [(d.type, d.match) for d in diffs] == [("CDS", True), ("LDS", True), ("EDS", True), ("RDS", True)]
    assert config_diff.render(diffs).splitlines() == [
        "Clusters Match (pilot sent version 3, Envoy has 3)",
        "Listeners Match (pilot sent version 1, Envoy has 1)",
        "Endpoints Match (pilot sent version 3, Envoy has -)",
        "Routes Match (pilot sent version 4, Envoy has 4)",
    ]


def test_a_nacked_route_differs_from_what_envoy_kept() -> None:
    sent = {t: s["sent"] for t, s in load("syncz_nack.json")["proxies"][0]["types"].items()}
    diffs = {d.type: d for d in config_diff.compare(load("pilot_config_dump_nack.json"),
                                                     load("envoy_config_dump.json"), sent)}
    assert all(diffs[t].match for t in ("CDS", "LDS", "EDS"))
    routes = diffs["RDS"]
    assert (routes.match, routes.changed, routes.pilot_version, routes.envoy_version) == \
        (False, ["http.8080"], "5", "4")
    removed = [line for line in routes.diff if line.startswith("-") and not line.startswith("---")]
    # What pilot sent and Envoy refused: the new virtual host with the bad header.
    assert any('"bad.example.com"' in line for line in removed)
    assert any('"value": "%NOT_A_VARIABLE%"' in line for line in removed)
    assert "Routes Don't Match (pilot sent version 5, Envoy has 4)" in config_diff.render(list(diffs.values()))
