"""DestinationRule rules (istio/istio pkg/config/validation ValidateDestinationRule)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, labels, scope
from libs.config.validation._checker import Checker
from libs.config.validation.destinations import subset_name
from libs.config.validation.traffic_policy import traffic_policy


def validate(spec: dict[str, Any], check: Checker) -> None:
    # Unlike a route destination, a DestinationRule's host may be a wildcard, `*` included.
    hosts.check_wildcard_domain(check, "spec.host", spec.get("host", ""))
    if "trafficPolicy" in spec:
        traffic_policy(check, "spec.trafficPolicy", spec["trafficPolicy"])
    names: set[str] = set()
    for i, subset in enumerate(spec.get("subsets", [])):
        path = f"spec.subsets[{i}]"
        name = subset.get("name", "")
        subset_name(check, f"{path}.name", name)
        if name in names:
            check.error(f"{path}.name", f"duplicate subset name {name!r}")
        names.add(name)
        labels.labels(check, f"{path}.labels", subset.get("labels", {}))
        if "trafficPolicy" in subset:
            traffic_policy(check, f"{path}.trafficPolicy", subset["trafficPolicy"])
    selector = spec.get("workloadSelector")
    scope.export_to(check, "spec.exportTo", spec.get("exportTo", []), workload_selector=selector is not None)
    if selector is not None:
        labels.selector(check, "spec.workloadSelector.matchLabels", selector.get("matchLabels", {}))
