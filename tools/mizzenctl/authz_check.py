"""`mizzenctl x authz check <proxy>`: which AuthorizationPolicies apply to one proxy, with
their action and number of rules, in the shape of `istioctl x authz check <pod>`.

This module owns reading authorization out of a proxy's Envoy configuration: the RBAC
filters on its active listeners (`envoy.filters.http.rbac` inside each HTTP connection
manager, `envoy.filters.network.rbac` on TCP filter chains) and the RBAC rules its route
configurations give those HTTP filters (`typed_per_filter_config`, where pilot keeps the
ALLOW, DENY and AUDIT rules so that a change applies to open connections), not the
AuthorizationPolicies themselves, so it shows what Envoy enforces.  The config dump is fetched like
`proxy-config`'s (tools.mizzenctl.sources): what pilot last sent the proxy (its
`/debug/config_dump`, the default), or with `--admin host:port` what Envoy holds.

Pilot names each RBAC policy `ns[<namespace>]-policy[<name>]-rule[<index>]`, one per rule.
`rules` carry enforced ALLOW, DENY and AUDIT (action LOG) policies; `shadow_rules` carry
CUSTOM policies (stat prefix `istio_ext_authz_`, names prefixed `istio-ext-authz-`) and
dry-run ones (`istio_dry_run_allow_` / `istio_dry_run_deny_`), which Envoy evaluates but
does not enforce.  An ALLOW filter without policies denies everything; istioctl shows it as
`_anonymous_match_nothing_`.  A policy sits on many filter chains (every inbound port, TLS
and plaintext): it is reported once per action, RULES counting its distinct rule indexes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, NamedTuple

from libs.envoy import HCM_FILTER, HCM_TYPE, RBAC_HTTP, RBAC_NETWORK
from tools.mizzenctl import config_dump, contexts
from tools.mizzenctl.envoy_tables import filter_chains
from tools.mizzenctl.sources import SourceError, add_pilot_flags, envoy_config_dump, pilot_config, pilot_urls
from tools.mizzenctl.table import render

__all__ = ["ANONYMOUS", "HEADER", "PolicyRow", "add_parser", "parse_policy_name", "policy_rows", "rbac_configs",
           "run", "table"]

Json = dict[str, Any]

HEADER = ("ACTION", "AuthorizationPolicy", "RULES")
# istioctl's authz table is a tabwriter with padding 3 (proxy-config's tables use 5).
PADDING = 3
ANONYMOUS = "_anonymous_match_nothing_"

# The HTTP connection manager also answers to its deprecated name.
HCM_NAMES = (HCM_FILTER, "envoy.http_connection_manager")
HTTP_RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"

EXT_AUTHZ_STAT_PREFIX = "istio_ext_authz_"
EXT_AUTHZ_NAME_PREFIX = "istio-ext-authz-"
DRY_RUN_STAT_PREFIXES = {"istio_dry_run_allow_": "ALLOW", "istio_dry_run_deny_": "DENY"}

# Envoy's RBAC action (protobuf JSON omits the default, ALLOW) as istioctl and Istio's API name it.
_ACTION_LABELS = {"ALLOW": "ALLOW", "DENY": "DENY", "LOG": "AUDIT"}
# The order Envoy applies them in (pilot puts CUSTOM's filters first, then AUDIT, DENY, ALLOW).
_ENFORCEMENT_ORDER = ("CUSTOM", "AUDIT", "DENY", "ALLOW")
_DRY_RUN_SUFFIX = " (dry-run)"

_POLICY_NAME = re.compile(r"ns\[([^\]]+)\]-policy\[([^\]]+)\]-rule\[(\d+)\]")


class PolicyRow(NamedTuple):
    action: str
    policy: str
    rules: int


def parse_policy_name(name: str) -> tuple[str, str] | None:
    """(`<name>.<namespace>`, rule index) from pilot's RBAC policy name (CUSTOM's
    `istio-ext-authz-` prefix allowed); None when the name is not in that form."""
    match = _POLICY_NAME.fullmatch(name.removeprefix(EXT_AUTHZ_NAME_PREFIX))
    if match is None:
        return None
    namespace, policy, rule = match.groups()
    return f"{policy}.{namespace}", rule


def _typed(config: Json, names: tuple[str, ...], type_url: str) -> bool:
    """Whether a filter is of `type_url`: its typed_config's @type decides (Envoy picks the
    extension by type), the name only when the config carries no @type."""
    kind = config.get("typed_config", {}).get("@type")
    return kind == type_url if kind else config.get("name") in names


PER_ROUTE_RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"


def route_rbac_configs(route_configs: list[Json]) -> list[Json]:
    """The RBAC configs route configurations (and their virtual hosts and routes) hand their
    HTTP RBAC filters."""
    found: list[Json] = []
    holders: list[Json] = []
    for config in route_configs:
        holders.append(config)
        for vhost in config.get("virtual_hosts", []):
            holders.append(vhost)
            holders.extend(vhost.get("routes", []))
    for holder in holders:
        for per_filter in (holder.get("typed_per_filter_config") or {}).values():
            if per_filter.get("@type") == PER_ROUTE_RBAC_TYPE and "rbac" in per_filter:
                found.append(per_filter["rbac"])
    return found


def rbac_configs(listeners: list[Json]) -> list[Json]:
    """The typed_config of every HTTP and network RBAC filter on the listeners' filter chains."""
    found: list[Json] = []
    for listener in listeners:
        for chain in filter_chains(listener):
            for network_filter in chain.get("filters", []):
                if _typed(network_filter, (RBAC_NETWORK,), NETWORK_RBAC_TYPE):
                    found.append(network_filter["typed_config"])
                elif _typed(network_filter, HCM_NAMES, HCM_TYPE):
                    found.extend(http_filter["typed_config"]
                                 for http_filter in network_filter.get("typed_config", {}).get("http_filters", [])
                                 if _typed(http_filter, (RBAC_HTTP,), HTTP_RBAC_TYPE)
                                 and "typed_config" in http_filter)
    return found


def _action_label(rules: Json) -> str:
    action = str(rules.get("action", "ALLOW"))
    return _ACTION_LABELS.get(action, action)


def _shadow_action(rbac: Json, shadow: Json, name: str) -> str:
    if rbac.get("shadow_rules_stat_prefix") == EXT_AUTHZ_STAT_PREFIX or name.startswith(EXT_AUTHZ_NAME_PREFIX):
        return "CUSTOM"
    base = DRY_RUN_STAT_PREFIXES.get(rbac.get("shadow_rules_stat_prefix", "")) or _action_label(shadow)
    return f"{base}{_DRY_RUN_SUFFIX}"


def _order(row: PolicyRow) -> tuple[int, bool, str, str]:
    base = row.action.removesuffix(_DRY_RUN_SUFFIX)
    rank = _ENFORCEMENT_ORDER.index(base) if base in _ENFORCEMENT_ORDER else len(_ENFORCEMENT_ORDER)
    return rank, row.action.endswith(_DRY_RUN_SUFFIX), row.action, row.policy


def policy_rows(dump: Json) -> list[PolicyRow]:
    """One row per (action, policy) among the RBAC filters of a config dump's active and
    static listeners, in enforcement order (CUSTOM, AUDIT, DENY, ALLOW; each action's
    dry-run after it) then by name.  A name not in pilot's form is shown raw, as one rule."""
    seen: dict[tuple[str, str], set[str]] = {}

    def add(action: str, name: str) -> None:
        parsed = parse_policy_name(name)
        policy, rule = parsed if parsed is not None else (name, name)
        seen.setdefault((action, policy), set()).add(rule)

    for rbac in rbac_configs(config_dump.listeners(dump)) + route_rbac_configs(config_dump.route_configs(dump)):
        rules = rbac.get("rules")
        if isinstance(rules, dict):
            action = _action_label(rules)
            policies = rules.get("policies") or {}
            for name in policies:
                add(action, name)
            if not policies and action == "ALLOW":
                seen.setdefault((action, ANONYMOUS), set())
        shadow = rbac.get("shadow_rules")
        if isinstance(shadow, dict):
            for name in shadow.get("policies") or {}:
                add(_shadow_action(rbac, shadow, name), name)
    return sorted((PolicyRow(action, policy, len(rules)) for (action, policy), rules in seen.items()), key=_order)


def table(rows: list[PolicyRow], proxy: str) -> str:
    """istioctl's table, or the sentence saying nothing applies to `proxy`."""
    if not rows:
        return f"No AuthorizationPolicies apply to {proxy}.\n"
    return render(HEADER, rows, padding=PADDING)


def run(args: argparse.Namespace) -> int:
    if not args.proxy and not args.admin:
        print("error: name a proxy (<pod>.<namespace>) or pass --admin host:port", file=sys.stderr)
        return 2
    try:
        if args.admin:
            dump = envoy_config_dump(args.admin, include_eds=False)
        else:
            dump = pilot_config(pilot_urls(args), args.proxy, include_eds=False).dump
    except SourceError as exc:
        print(f"error: {exc}; {contexts.explain(args)}", file=sys.stderr)
        return 1
    rows = policy_rows(dump)
    if args.output == "json":
        print(json.dumps([row._asdict() for row in rows], indent=2))
    else:
        print(table(rows, args.proxy or f"the proxy at {args.admin}"), end="")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """`authz check` under `mizzenctl x`'s subcommands."""
    authz = commands.add_parser("authz", help="inspect AuthorizationPolicies as proxies enforce them")
    verbs = authz.add_subparsers(dest="authz_command", required=True)
    check = verbs.add_parser(
        "check", help="the AuthorizationPolicies applied to one proxy, read from its Envoy configuration",
        description="Print the AuthorizationPolicies that apply to a proxy, with their action and number of "
                    "rules, from the RBAC filters in its Envoy configuration (what pilot sent it, or with "
                    "--admin what its Envoy holds).")
    check.add_argument("proxy", nargs="?", help="<pod>.<namespace>, a pod name, or a full node id")
    check.add_argument("--admin", metavar="HOST:PORT",
                       help="read the proxy's Envoy admin instead of pilot (what Envoy actually runs)")
    check.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_pilot_flags(check)
    check.set_defaults(run=run)
