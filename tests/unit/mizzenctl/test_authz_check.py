"""`mizzenctl x authz check`: the AuthorizationPolicies a proxy enforces, read from the RBAC
filters of its Envoy configuration.

testdata/authz_config_dump.json is hand-written in the shape pilot generates: a
productpage-v1 sidecar whose virtualInbound listener has a TLS and a plaintext HTTP chain
for port 9080 (the same filters on both: CUSTOM, AUDIT, DENY with a dry-run DENY, ALLOW
with a dry-run ALLOW) and a TCP chain for 9090 (network RBAC: the DENY policy again, and an
ALLOW), plus a warming version of that listener (not enforced yet) and an outbound listener
without RBAC.  The other cases are small documents built here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tools.mizzenctl import authz_check, cli
from tools.mizzenctl.authz_check import PolicyRow

DATA = Path(__file__).parent / "testdata"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ANY = {"permissions": [{"any": True}], "principals": [{"any": True}]}

Json = dict[str, Any]


def http_rbac(**config: Any) -> Json:
    return {"name": "envoy.filters.http.rbac",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", **config}}


def network_rbac(**config: Any) -> Json:
    return {"name": "envoy.filters.network.rbac",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
                             "stat_prefix": "tcp.", **config}}


def http_chain(*http_filters: Json, port: int = 9080) -> Json:
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    return {"filter_chain_match": {"destination_port": port},
            "filters": [{"name": "envoy.filters.network.http_connection_manager",
                         "typed_config": {"@type": HCM_TYPE, "stat_prefix": f"inbound_0.0.0.0_{port}",
                                          "http_filters": [*http_filters, router]}}]}


def rules(action: str | None, *names: str) -> Json:
    found: Json = {"policies": dict.fromkeys(names, ANY)}
    if action is not None:
        found["action"] = action
    return found


def dump(*chains: Json) -> Json:
    """A config dump with one active listener holding `chains`."""
    listener = {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "virtualInbound",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}},
                "filter_chains": list(chains)}
    return {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "version_info": "1",
                         "dynamic_listeners": [{"name": "virtualInbound",
                                                "active_state": {"version_info": "1", "listener": listener}}]}]}


def test_sidecar_table_in_enforcement_order() -> None:
    rows = authz_check.policy_rows(json.loads((DATA / "authz_config_dump.json").read_text()))
    # Each policy once although it sits on both 9080 chains (deny-blocked on the TCP one too);
    # productpage-viewer's two rules counted; the warming listener's policy is not enforced yet.
    assert authz_check.table(rows, "productpage-v1.default") == """\
ACTION            AuthorizationPolicy          RULES
CUSTOM            ext-authz.default            1
AUDIT             audit-reviews.default        1
DENY              deny-blocked.istio-system    1
DENY (dry-run)    deny-post.default            1
ALLOW             metrics-scraper.default      1
ALLOW             productpage-viewer.default   2
ALLOW (dry-run)   allow-monitoring.default     1
"""


def test_allow_and_deny_on_http_chains() -> None:
    rows = authz_check.policy_rows(dump(http_chain(
        http_rbac(rules=rules("DENY", "ns[default]-policy[deny-delete]-rule[0]")),
        # No action: protobuf JSON omits the default, ALLOW.
        http_rbac(rules=rules(None, "ns[default]-policy[viewer]-rule[0]", "ns[default]-policy[viewer]-rule[2]",
                              "ns[foo]-policy[viewer]-rule[0]")))))
    assert rows == [PolicyRow("DENY", "deny-delete.default", 1), PolicyRow("ALLOW", "viewer.default", 2),
                    PolicyRow("ALLOW", "viewer.foo", 1)]


def test_tcp_network_rbac_filter() -> None:
    chain = {"filter_chain_match": {"destination_port": 3306}, "filters": [
        network_rbac(rules=rules("DENY", "ns[db]-policy[no-outsiders]-rule[0]", "ns[db]-policy[no-outsiders]-rule[1]")),
        {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "inbound|3306||", "cluster": "inbound|3306||"}},
    ]}
    assert authz_check.policy_rows(dump(chain)) == [PolicyRow("DENY", "no-outsiders.db", 2)]


def test_same_policy_on_two_chains_is_counted_once() -> None:
    viewer = http_rbac(rules=rules(None, "ns[default]-policy[viewer]-rule[0]"))
    tls = http_chain(viewer) | {"filter_chain_match": {"destination_port": 9080, "transport_protocol": "tls"}}
    plain = http_chain(viewer) | {"filter_chain_match": {"destination_port": 9080, "transport_protocol": "raw_buffer"}}
    # A rule only another chain carries (istio skips HTTP-only rules on TCP chains) adds to the count.
    other = http_chain(http_rbac(rules=rules(None, "ns[default]-policy[viewer]-rule[1]")), port=9081)
    assert authz_check.policy_rows(dump(tls, plain)) == [PolicyRow("ALLOW", "viewer.default", 1)]
    assert authz_check.policy_rows(dump(tls, plain, other)) == [PolicyRow("ALLOW", "viewer.default", 2)]


def test_allow_without_policies_allows_nothing() -> None:
    rows = authz_check.policy_rows(dump(http_chain(
        http_rbac(rules={}),
        # Empty DENY and AUDIT filters match nothing, so they change nothing.
        http_rbac(rules={"action": "DENY"}),
        http_rbac(rules={"action": "LOG", "policies": {}}))))
    assert rows == [PolicyRow("ALLOW", authz_check.ANONYMOUS, 0)]
    assert authz_check.table(rows, "p.default") == (
        "ACTION   AuthorizationPolicy         RULES\n"
        "ALLOW    _anonymous_match_nothing_   0\n")


def test_filter_without_rules_enforces_nothing() -> None:
    assert authz_check.policy_rows(dump(http_chain(http_rbac()))) == []


def test_dry_run_policies_are_shadow_rules() -> None:
    rows = authz_check.policy_rows(dump(http_chain(
        http_rbac(shadow_rules=rules("DENY", "ns[default]-policy[deny-post]-rule[0]"),
                  shadow_rules_stat_prefix="istio_dry_run_deny_"),
        http_rbac(rules=rules(None, "ns[default]-policy[viewer]-rule[0]"),
                  shadow_rules=rules(None, "ns[default]-policy[viewer-next]-rule[0]"),
                  shadow_rules_stat_prefix="istio_dry_run_allow_"))))
    assert rows == [PolicyRow("DENY (dry-run)", "deny-post.default", 1), PolicyRow("ALLOW", "viewer.default", 1),
                    PolicyRow("ALLOW (dry-run)", "viewer-next.default", 1)]


def test_only_dry_run_allow_is_not_allow_nothing() -> None:
    # Shadow rules are evaluated, never enforced: an empty shadow ALLOW denies nothing.
    rows = authz_check.policy_rows(dump(http_chain(
        http_rbac(shadow_rules={}, shadow_rules_stat_prefix="istio_dry_run_allow_"))))
    assert rows == []


def test_custom_policies_are_ext_authz_shadow_rules() -> None:
    names = ("istio-ext-authz-ns[default]-policy[ext-authz]-rule[0]",
             "istio-ext-authz-ns[default]-policy[ext-authz]-rule[1]")
    chain = {"filter_chain_match": {"destination_port": 9090}, "filters": [
        network_rbac(shadow_rules=rules("DENY", *names), shadow_rules_stat_prefix="istio_ext_authz_")]}
    http = http_chain(http_rbac(shadow_rules=rules("DENY", names[0]), shadow_rules_stat_prefix="istio_ext_authz_"))
    assert authz_check.policy_rows(dump(chain, http)) == [PolicyRow("CUSTOM", "ext-authz.default", 2)]


def test_audit_is_log() -> None:
    rows = authz_check.policy_rows(dump(http_chain(
        http_rbac(rules=rules("LOG", "ns[default]-policy[audit-all]-rule[0]")),
        http_rbac(rules=rules("DENY", "ns[default]-policy[deny]-rule[0]")),
        http_rbac(shadow_rules=rules("DENY", "istio-ext-authz-ns[default]-policy[ext]-rule[0]"),
                  shadow_rules_stat_prefix="istio_ext_authz_"))))
    assert [row.action for row in rows] == ["CUSTOM", "AUDIT", "DENY"]
    assert rows[1] == PolicyRow("AUDIT", "audit-all.default", 1)


def test_unknown_policy_names_are_shown_raw() -> None:
    rows = authz_check.policy_rows(dump(http_chain(
        http_rbac(rules=rules("DENY", "default-deny-all", "ns[default]-policy[x]-rule[one]")))))
    assert rows == [PolicyRow("DENY", "default-deny-all", 1), PolicyRow("DENY", "ns[default]-policy[x]-rule[one]", 1)]


@pytest.mark.parametrize(("name", "expected"), [
    ("ns[default]-policy[viewer]-rule[3]", ("viewer.default", "3")),
    ("istio-ext-authz-ns[foo]-policy[ext]-rule[0]", ("ext.foo", "0")),
    ("ns[default]-policy[viewer]", None),
    ("prefix-ns[default]-policy[viewer]-rule[0]", None),
])
def test_parse_policy_name(name: str, expected: tuple[str, str] | None) -> None:
    assert authz_check.parse_policy_name(name) == expected


def test_no_policies() -> None:
    assert authz_check.policy_rows({}) == []
    no_rbac = authz_check.policy_rows(dump(http_chain()))
    assert no_rbac == []
    assert authz_check.table(no_rbac, "details-v1.default") == "No AuthorizationPolicies apply to details-v1.default.\n"


def check_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["x", "authz", "check", *argv])


def test_cli_wiring() -> None:
    args = check_args("productpage-v1.default")
    assert args.command == "x"
    assert args.run is authz_check.run
    assert (args.proxy, args.admin, args.output) == ("productpage-v1.default", None, "table")
    assert check_args("--admin", "127.0.0.1:15000", "-o", "json").admin == "127.0.0.1:15000"


def test_run_reads_pilot_and_prints(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[tuple[list[str], str, bool]] = []

    def pilot_config(urls: list[str], proxy: str, *, include_eds: bool) -> Any:
        asked.append((urls, proxy, include_eds))
        return argparse.Namespace(dump=dump(http_chain()))

    monkeypatch.setattr(authz_check, "pilot_config", pilot_config)
    assert authz_check.run(check_args("details-v1.default", "--pilot", "http://pilot:15014")) == 0
    assert asked == [(["http://pilot:15014"], "details-v1.default", False)]
    assert capsys.readouterr().out == "No AuthorizationPolicies apply to details-v1.default.\n"


def test_run_json_from_envoy_admin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    document = dump(http_chain(http_rbac(rules=rules(None, "ns[default]-policy[viewer]-rule[0]"))))
    monkeypatch.setattr(authz_check, "envoy_config_dump", lambda admin, *, include_eds: document)
    assert authz_check.run(check_args("--admin", "127.0.0.1:15000", "-o", "json")) == 0
    assert json.loads(capsys.readouterr().out) == [{"action": "ALLOW", "policy": "viewer.default", "rules": 1}]


def test_run_needs_a_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    assert authz_check.run(check_args()) == 2
    assert "name a proxy" in capsys.readouterr().err


def test_rules_carried_by_route_configurations_count() -> None:
    """Pilot keeps the ALLOW, DENY and AUDIT rules of HTTP chains in the route configuration
    (so a change reaches open connections): they are read from there too."""
    per_route = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
    routes = {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
        {"route_config": {"name": "inbound|9080||", "typed_per_filter_config": {
            "envoy.filters.http.rbac.deny": {"@type": per_route, "rbac": {
                "rules": rules("DENY", "ns[default]-policy[deny-admin]-rule[0]")}},
            "envoy.filters.http.rbac.allow": {"@type": per_route, "rbac": {"rules": rules(None)}}}}}]}
    document = dump(http_chain(http_rbac(shadow_rules_stat_prefix="istio_dry_run_allow_")))
    document["configs"].append(routes)
    assert authz_check.policy_rows(document) == [PolicyRow("DENY", "deny-admin.default", 1),
                                                 PolicyRow("ALLOW", authz_check.ANONYMOUS, 0)]
