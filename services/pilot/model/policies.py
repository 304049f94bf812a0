"""Which security policies (AuthorizationPolicy, RequestAuthentication) apply to a proxy.

Istio's scope: a policy in the root namespace applies mesh-wide, one in a workload's
namespace to that namespace's workloads, and `selector.matchLabels` narrows either to the
workloads carrying those labels (a root-namespace policy with a selector reaches matching
workloads in every namespace).  Gateways are workloads like any other.  Policies that
attach by `targetRef(s)` address Kubernetes Gateway API gateways and waypoints, which
Mizzen does not run, so they select no proxy.
"""

from __future__ import annotations

from libs.config import Resource
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext

DRY_RUN_ANNOTATION = "istio.io/dry-run"


def _by_namespace(push: PushContext, kind: str) -> dict[str, list[Resource]]:
    grouped: dict[str, list[Resource]] = {}
    for policy in push.config.of_kind(kind):
        if not policy.spec.get("targetRef") and not policy.spec.get("targetRefs"):
            grouped.setdefault(policy.namespace, []).append(policy)
    return grouped


def policies_for(kind: str, proxy: Proxy, push: PushContext) -> list[Resource]:
    """The `kind` policies that apply to `proxy`: the root namespace's first, then its own
    namespace's, each in (namespace, name) order."""
    grouped = push.derived(("policies-by-namespace", kind), lambda: _by_namespace(push, kind))
    root = push.mesh.root_namespace
    namespaces = [root] if proxy.namespace == root else [root, proxy.namespace]
    selected: list[Resource] = []
    for namespace in namespaces:
        for policy in grouped.get(namespace, ()):
            labels = policy.spec.get("selector", {}).get("matchLabels")
            if not labels or proxy.matches(labels):
                selected.append(policy)
    return selected


def is_dry_run(policy: Resource) -> bool:
    """`istio.io/dry-run: "true"` (any of Go's true spellings, as Istio parses it)."""
    return policy.annotations.get(DRY_RUN_ANNOTATION, "").lower() in ("1", "t", "true")
