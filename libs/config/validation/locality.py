"""Locality load balancing settings (Istio's agent.ValidateLocalityLbSetting).

Localities are `region/zone/subzone`, each part optional from the right and the last one
possibly `*`.  Distributions must not overlap and their weights must sum to 100.
"""

from __future__ import annotations

from typing import Any

from libs.config.validation._checker import Checker

# failoverPriority labels that duplicate what `failover` already orders by.
_TOPOLOGY_LABELS = frozenset({"topology.kubernetes.io/region", "topology.kubernetes.io/zone",
                              "topology.istio.io/subzone"})


def _localities_problem(localities: list[str]) -> str | None:
    """Parse each locality into at most three parts and reject overlaps, in one pass."""
    claimed: set[tuple[str, ...]] = set()
    for locality in localities:
        stars = locality.count("*")
        if stars > 1 or (stars == 1 and not locality.endswith("*")):
            return f"locality {locality!r}: a '*' wildcard may appear once, at the end"
        parts = tuple(locality.split("/", 2))
        if any(part == "" for part in parts):
            return f"locality {locality!r} must not contain an empty region, zone or subzone"
        if parts[-1] == "*":
            parts = parts[:-1]
        # Overlap: this locality, or any locality containing it, was named before; or this
        # one contains an earlier one.
        prefixes = {parts[:n] for n in range(len(parts) + 1)}
        if prefixes & claimed or any(other[:len(parts)] == parts for other in claimed):
            return f"locality {locality!r} overlaps with one specified before"
        claimed.add(parts)
    return None


def locality_lb(check: Checker, path: str, lb: dict[str, Any], outlier: dict[str, Any] | None) -> None:
    distribute = lb.get("distribute", [])
    failover = lb.get("failover", [])
    priority = lb.get("failoverPriority", [])
    if distribute and failover:
        check.error(path, "distribute and failover cannot be set together")
        return
    if failover:
        for i, label in enumerate(priority):
            if label in _TOPOLOGY_LABELS:
                check.error(f"{path}.failoverPriority[{i}]", f"failover and the topology label {label!r} in "
                                                             "failoverPriority cannot be set together")
    for i, rule in enumerate(distribute):
        weights = rule.get("to", {})
        if any(not 1 <= weight <= 100 for weight in weights.values()):
            check.error(f"{path}.distribute[{i}].to", "locality weights must be in the range 1-100")
        elif sum(weights.values()) != 100:
            check.error(f"{path}.distribute[{i}].to", f"locality weights sum to {sum(weights.values())}, must be 100")
        problem = _localities_problem(list(weights))
        if problem:
            check.error(f"{path}.distribute[{i}].to", problem)
    problem = _localities_problem([rule.get("from", "") for rule in distribute])
    if problem:
        check.error(f"{path}.distribute", problem)
    if (failover or priority) and outlier is None:
        check.warn(path, "failover needs an outlierDetection policy to detect unhealthy endpoints")
    for i, rule in enumerate(failover):
        source, target = rule.get("from", ""), rule.get("to", "")
        where = f"{path}.failover[{i}]"
        if source == target:
            check.error(where, "failover must name two different regions")
        if "/" in source or "/" in target:
            check.error(where, "failover names regions only (no '/')")
        if "*" in source or "*" in target:
            check.error(where, "failover regions cannot contain '*'")
