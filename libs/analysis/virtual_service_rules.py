"""VirtualServices that cannot all take effect: two bound to the mesh for one host
(IST0109), and rules or matches an earlier rule already takes (IST0130, IST0131)
(istio/istio `analyzers/virtualservice/conflictingmeshgatewayhosts.go`, and the match
checks Istio's validation reports as analysis messages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import MESH_GATEWAY, Catalog
from libs.analysis._messages import (
    ConflictingMeshGatewayVirtualServiceHosts,
    Message,
    VirtualServiceIneffectiveMatch,
    VirtualServiceUnreachableRule,
)
from libs.config import Resource

# The validation warnings (libs.config.validation.virtual_service) these analyzers report
# with Istio's codes instead: the schema analyzer leaves them out.
VALIDATION_REASONS = ("rule not used", "match not used")


def _scopes(vs: Resource) -> list[str]:
    """Where a VirtualService's hosts are visible: `*`, or the namespaces of its exportTo."""
    export_to = [str(e) for e in vs.spec.get("exportTo") or ()]
    if not export_to or "*" in export_to:
        return ["*"]
    return sorted({vs.namespace if e == "." else e for e in export_to})


def _conflicting_hosts(catalog: Catalog) -> Iterator[Message]:
    by_host: dict[str, list[Resource]] = {}
    for vs in catalog.of_kind("VirtualService"):
        gateways = vs.spec.get("gateways") or []
        if gateways and MESH_GATEWAY not in gateways:
            continue
        for scope in _scopes(vs):
            for host in vs.spec.get("hosts") or ():
                by_host.setdefault(f"{scope}/{catalog.fqdn(str(host), vs.namespace)}", []).append(vs)
    for scoped, services in sorted(by_host.items()):
        if len(services) > 1:
            names = ",".join(f"{vs.namespace}/{vs.name}" for vs in services)
            for vs in services:
                yield Message(ConflictingMeshGatewayVirtualServiceHosts, catalog.ref(vs), (names, scoped))


def _rule_name(section: str, rule: dict[str, Any], index: int) -> str:
    # Only HTTP rules and matches have names; Go's %q quotes them.
    name = rule.get("name") if section == "http" else None
    return json.dumps(name) if name else f"#{index}"


def unreachable(section: str, rules: list[dict[str, Any]]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """("rule", (rule, reason)) for a rule no request reaches, ("match", (rule, match,
    earlier rule)) for a match an earlier rule already has."""
    seen: dict[str, int] = {}
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        matches = rule.get("match") or []
        if not matches:
            if catch_all is not None:
                yield "rule", (_rule_name(section, rule, i), "only the last rule can have no matches")
            catch_all = i
            continue
        duplicates = 0
        for j, match in enumerate(matches):
            key = json.dumps({k: v for k, v in match.items() if k != "name"}, sort_keys=True)
            if key in seen:
                duplicates += 1
                yield "match", (_rule_name(section, rule, i), _rule_name(section, match, j),
                                _rule_name(section, rules[seen[key]], seen[key]))
            else:
                seen[key] = i
        if duplicates == len(matches):
            yield "rule", (_rule_name(section, rule, i), "all matches used by prior rules")


def _matches(catalog: Catalog) -> Iterator[Message]:
    for vs in catalog.of_kind("VirtualService"):
        for section in ("http", "tcp", "tls"):
            for what, args in unreachable(section, list(vs.spec.get(section) or ())):
                kind = VirtualServiceUnreachableRule if what == "rule" else VirtualServiceIneffectiveMatch
                yield Message(kind, catalog.ref(vs), args)


CONFLICTING_MESH_GATEWAY_HOSTS = Analyzer(
    "virtualservice.ConflictingMeshGatewayHostsAnalyzer",
    "Checks if multiple virtual services associated with the mesh gateway have conflicting hosts",
    _conflicting_hosts, ("VirtualService",))
MATCHES = Analyzer("virtualservice.MatchesAnalyzer", "Checks virtual services for unreachable and duplicate matches",
                   _matches, ("VirtualService",))
