"""How `x describe` prints a DestinationRule and a VirtualService for one service and the
pods behind it, in istioctl's words (istioctl/pkg/describe/describe.go: printDestinationRule,
printVirtualService, httpRouteMatchSvc, renderMatch).  Pure: resources as JSON in, lines out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Service", "destination_rule_lines", "matching_subsets", "same_host", "selects", "virtual_service_lines"]

Json = dict[str, Any]
Service = Json  # pilot's /debug/registryz entry: hostname, namespace, ports, endpoints

LEVEL1 = "   "
LEVEL2 = "      "


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A label selector (empty selects everything) against one workload's labels."""
    return all(labels.get(key) == value for key, value in (selector or {}).items())


def same_host(host: str, namespace: str, service_host: str, domain: str = "cluster.local") -> bool:
    """Whether a route's destination `host`, written in `namespace`, names `service_host`
    (Istio's short-name resolution: `reviews` in `default` is reviews.default.svc.<domain>,
    and istioctl reads `reviews.default` as reviews.default.svc.<domain> too)."""
    if not host:
        return False
    resolved = host if "." in host else f"{host}.{namespace}.svc.{domain}"
    return service_host in (resolved, f"{resolved}.svc.{domain}")


def matching_subsets(rule: Json | None, pods_labels: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """(subsets some pod matches, subsets none does)."""
    matching: list[str] = []
    other: list[str] = []
    for subset in ((rule or {}).get("spec", {}).get("subsets") or []):
        labels = subset.get("labels") or {}
        (matching if any(selects(labels, pod) for pod in pods_labels) else other).append(str(subset.get("name")))
    return matching, other


def _short_policies(policy: Json) -> str:
    extra = [label for key, label in (("loadBalancer", "load balancer"), ("connectionPool", "connection pool"),
                                      ("outlierDetection", "outlier detection")) if policy.get(key) is not None]
    return f"Policies: {'/'.join(extra)}" if extra else ""


def destination_rule_lines(rule: Json, name: str, pods_labels: list[dict[str, str]], indent: str = "") -> list[str]:
    spec = rule.get("spec", {})
    lines = [f'{indent}DestinationRule: {name} for "{spec.get("host", "")}"']
    matching, other = matching_subsets(rule, pods_labels)
    if matching or other:
        if not matching:
            lines.append(f"{indent}{LEVEL1}WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets "
                         f"{','.join(other)})")
        lines.append(f"{indent}{LEVEL1}Matching subsets: {','.join(matching)}")
        if other:
            lines.append(f"{indent}{LEVEL2}(Non-matching subsets {','.join(other)})")
    policy = spec.get("trafficPolicy")
    if policy is None:
        lines.append(f"{indent}{LEVEL1}No Traffic Policy")
        return lines
    if policy.get("tls") is not None:
        lines.append(f"{indent}{LEVEL1}Traffic Policy TLS Mode: {policy['tls'].get('mode', 'DISABLE')}")
    if short := _short_policies(policy):
        lines.append(f"{indent}{LEVEL1}{short}")
    if policy.get("portLevelSettings"):
        lines.append(f"{indent}{LEVEL1}Port Level Settings:")
        for port_policy in policy["portLevelSettings"]:
            lines.append(f"    {port_policy.get('port', {}).get('number', 0)}:")
            if port_policy.get("tls") is not None:
                lines.append(f"{indent}{LEVEL2}TLS Mode: {port_policy['tls'].get('mode', 'DISABLE')}")
            if short := _short_policies(port_policy):
                lines.append(f"{indent}{LEVEL2}{short}")
    return lines


def _string_match(match: Json | None) -> str:
    if not match:
        return ""
    if "exact" in match:
        return str(match["exact"])
    if "prefix" in match:
        return f"{match['prefix']}*"
    if "regex" in match:
        return f"regex {match['regex']}"
    return ""


def render_match(match: Json) -> str:
    """istioctl's renderMatch (URI, case, headers), without its double space when a match
    has headers but no URI."""
    parts = ["Match:"]
    if match.get("uri"):
        parts.append(_string_match(match["uri"]) + (" uncased" if match.get("ignoreUriCase") else ""))
    if match.get("headers"):
        conditions = [f"{key}={_string_match(value)}" for key, value in sorted(match["headers"].items())]
        parts.append("when headers are " + "; ".join(conditions))
    return " ".join(part for part in parts if part)


def render_matches(matches: list[Json]) -> str:
    return ", ".join(render_match(m) for m in matches) if matches else "everything"


def _fault(fault: Json) -> str:
    parts = []
    if "delay" in fault:
        parts.append(f"delay {fault['delay'].get('fixedDelay', '')}".strip())
    if "abort" in fault:
        parts.append(f"abort {fault['abort'].get('httpStatus', fault['abort'].get('grpcStatus', ''))}".strip())
    return f"Fault injection {', '.join(parts)}"


def _http_route(vs: Json, route: Json, host: str, matching: list[str], other: list[str], rule_name: str | None,
                domain: str) -> tuple[bool, list[str]]:
    namespace = vs.get("metadata", {}).get("namespace", "")
    facts: list[str] = []
    mismatches: list[str] = []
    matched = False
    for destination in route.get("route") or []:
        target = destination.get("destination", {})
        subset = target.get("subset", "")
        weight = int(destination.get("weight", 0))
        if same_host(target.get("host", ""), namespace, host, domain):
            if subset and subset in other:
                matches = render_matches(route.get("match") or [])
                mismatches.append(f"Route to non-matching subset {subset} for ({matches})")
                continue
            if subset and subset not in matching:
                mismatches.append(f"Warning: Route to subset {subset} but NO DESTINATION RULE defining subsets!"
                                  if rule_name is None else
                                  f"Warning: Route to UNKNOWN subset {subset}; check DestinationRule {rule_name}")
                continue
            matched = True
            if weight > 0:
                fact = f'Route to host "{target.get("host", "")}"' + (f' subset "{subset}"' if subset else "")
                facts.append(f"{fact} with weight {weight}%")
        elif not subset:
            facts.append(f'Route to host "{target.get("host", "")}" with weight {weight}%')
        else:
            facts.append(f"Route to {target.get('host', '')} with invalid config")
    if matched:
        request = ([_fault(route["fault"])] if route.get("fault") else []) + \
                  [render_match(m) for m in route.get("match") or []]
        if request:
            facts.append(", ".join(request))
    if not matched and mismatches:
        facts.extend(mismatches)
    return matched, facts


def virtual_service_lines(vs: Json, name: str, host: str, matching: list[str], other: list[str],
                          rule_name: str | None, domain: str = "cluster.local", indent: str = "") -> list[str]:
    """istioctl's printVirtualService for the service `host` (an FQDN)."""
    spec = vs.get("spec", {})
    http, tcp, tls = spec.get("http") or [], spec.get("tcp") or [], spec.get("tls") or []
    lines = [f"{indent}VirtualService: {name}"]
    matches = facts = 0
    mismatches: list[str] = []
    for route in http:
        matched, new = _http_route(vs, route, host, matching, other, rule_name, domain)
        if matched:
            matches += 1
            lines.extend(f"{indent}{LEVEL1}{fact}" for fact in new)
            facts += len(new)
        else:
            mismatches.extend(new)
    namespace = vs.get("metadata", {}).get("namespace", "")
    for route in tcp:
        if any(same_host(d.get("destination", {}).get("host", ""), namespace, host, domain)
               for d in route.get("route") or []):
            matches += 1
            new = [f"Match: port {m['port']}" if "port" in m else "Match: " + str(m) for m in route.get("match") or []]
            lines.extend(f"{indent}{LEVEL1}{fact}" for fact in new)
            facts += len(new)
    if matches == 0:
        for count, what in ((len(http), "HTTP"), (len(tcp), "TCP")):
            if count:
                lines.append(f"{indent}{LEVEL1}WARNING: No destinations match pod subsets (checked {count} {what} "
                             "routes)")
        lines.extend(f"{indent}{LEVEL2}{note}" for note in mismatches)
        return lines
    possible = len(http) + len(tls) + len(tcp)
    if matches < possible:
        lines.append(f"{indent}{LEVEL1}{possible - matches} additional destination(s) that will not reach this pod")
        if facts == 0:
            lines.extend(f"{indent}{LEVEL2}{note}" for note in mismatches)
        return lines
    if facts == 0:
        if http:
            lines.append(f"{indent}{LEVEL1}{len(http)} HTTP route(s)")
        if tcp:
            lines.append(f"{indent}{LEVEL1}{len(tcp)} TCP route(s)")
    return lines
