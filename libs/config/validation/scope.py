"""Where a resource applies: exportTo, workload selectors and policy target references."""

from __future__ import annotations

from typing import Any

from libs.config.validation import labels
from libs.config.validation._checker import Checker
from libs.config.validation.hosts import is_dns_label

# Istio's allowedTargetRefs: (group, kind); the core group is "".
TARGET_KINDS = frozenset({("", "Service"), ("networking.istio.io", "ServiceEntry"),
                          ("gateway.networking.k8s.io", "Gateway")})


def export_to(check: Checker, path: str, values: list[str], *, allow_none: bool = False,
              workload_selector: bool = False) -> None:
    """Istio's validateExportTo: `.`, `*`, namespaces, and `~` (ServiceEntry only), no duplicates."""
    seen: set[str] = set()
    for i, value in enumerate(values):
        key = check.namespace if value == "." else value
        if key in seen:
            check.error(f"{path}[{i}]", f"duplicate exportTo entry {value!r}" +
                        (f" (. is the current namespace {check.namespace})" if key != value else ""))
            continue
        seen.add(key)
        if value == "~" and not allow_none:
            check.error(f"{path}[{i}]", "exportTo ~ (no one) is only allowed for ServiceEntry")
        elif value not in (".", "*", "~") and not is_dns_label(value):
            check.error(f"{path}[{i}]", f"exportTo {value!r}: only ., *, ~ or a namespace name is allowed")
    if "*" in seen and len(values) > 1:
        check.error(path, "cannot have both public (*) and non-public exportTo values")
    if "~" in seen and len(values) > 1:
        check.error(path, "cannot export to no one (~) and someone")
    if workload_selector and seen and seen != {check.namespace}:
        # A DestinationRule scoped to some workloads is, by construction, private to them.
        check.error(path, "a DestinationRule with a workloadSelector can only be exported to its own namespace")


def networking_selector(check: Checker, path: str, selector: dict[str, Any]) -> None:
    """networking.v1alpha3.WorkloadSelector (Sidecar, ServiceEntry): `labels`."""
    labels.selector(check, f"{path}.labels", selector.get("labels", {}))


def _target_ref(check: Checker, path: str, ref: dict[str, Any]) -> None:
    if not ref.get("name"):
        check.error(f"{path}.name", "targetRef name must be set")
    if ref.get("namespace"):
        check.error(f"{path}.namespace", "targetRef namespace must not be set: cross-namespace references "
                                         "are not supported")
    group = ref.get("group", "")
    if (group, ref.get("kind", "")) not in TARGET_KINDS:
        check.error(path, f"targetRef must be a Service, ServiceEntry or gateway.networking.k8s.io Gateway, "
                          f"not {group or 'core'}/{ref.get('kind', '')}")


def policy_selection(check: Checker, spec: dict[str, Any]) -> None:
    """`selector`, `targetRef` and `targetRefs` of the security kinds: at most one, each valid."""
    used: list[str] = [field for field in ("selector", "targetRef") if field in spec]
    used += ["targetRefs"] if spec.get("targetRefs") else []
    if len(used) > 1:
        check.error("spec", f"only one of selector, targetRef or targetRefs can be set (found {', '.join(used)})")
    if "selector" in spec:
        labels.selector(check, "spec.selector.matchLabels", spec["selector"].get("matchLabels", {}))
    if "targetRef" in spec:
        _target_ref(check, "spec.targetRef", spec["targetRef"])
    for i, ref in enumerate(spec.get("targetRefs", [])):
        _target_ref(check, f"spec.targetRefs[{i}]", ref)
