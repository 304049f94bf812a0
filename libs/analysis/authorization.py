"""AuthorizationPolicies that name what does not exist: a selector no workload carries
(IST0127), a source namespace no workload, service or config lives in, a source
principal no workload runs as (IST0101) (istio/istio `analyzers/authz/
authorizationpolicies.go`; Istio has no principal check, Mizzen adds it with the same code).

Principals are checked only when they are in the mesh's trust domain and name a namespace
and service account (`<trust domain>/ns/<ns>/sa/<sa>`); `*` and prefix or suffix
wildcards must match at least one known identity.  Policies attached by `targetRef(s)`
address Gateway API objects Mizzen does not run, and are left out of the selector check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog
from libs.analysis._messages import Message, NoMatchingWorkloadsFound, ReferencedResourceNotFound, quoted
from libs.analysis._platform import selector_text
from libs.config import Resource


def wildcard_match(value: str, pattern: str, *, fold: bool = False) -> bool:
    """Istio's string match: `*`, `prefix*`, `*suffix`, or equal."""
    if fold:
        value, pattern = value.lower(), pattern.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _sources(policy: Resource) -> Iterator[dict[str, Any]]:
    for rule in policy.spec.get("rules") or ():
        for source in rule.get("from") or ():
            yield source.get("source") or {}


def _selectors(catalog: Catalog, policy: Resource) -> Iterator[Message]:
    if policy.spec.get("targetRef") or policy.spec.get("targetRefs"):
        return
    labels = {str(k): str(v) for k, v in ((policy.spec.get("selector") or {}).get("matchLabels") or {}).items()}
    in_mesh = [w for w in catalog.workloads if w.sidecar]
    if policy.namespace == catalog.root_namespace:
        found = not labels or any(w.matches(labels) for w in in_mesh)
    else:
        found = any(w.namespace == policy.namespace and w.matches(labels) for w in in_mesh)
    if not found:
        yield Message(NoMatchingWorkloadsFound, catalog.ref(policy), (selector_text(labels),))


def _namespaces(catalog: Catalog, policy: Resource) -> Iterator[Message]:
    for source in _sources(policy):
        for namespace in [*(source.get("namespaces") or ()), *(source.get("notNamespaces") or ())]:
            if not any(wildcard_match(known, str(namespace), fold=True) for known in catalog.namespaces):
                yield Message(ReferencedResourceNotFound, catalog.ref(policy), ("namespace", quoted(str(namespace))))


def _principals(catalog: Catalog, policy: Resource) -> Iterator[Message]:
    prefix = f"{catalog.trust_domain}/"
    identities = [f"{prefix}ns/{ns}/sa/{sa}" for ns, sa in sorted(catalog.identities)]
    for source in _sources(policy):
        for written in [*(source.get("principals") or ()), *(source.get("notPrincipals") or ())]:
            principal = str(written).removeprefix("spiffe://")
            if principal == "*":
                continue
            if principal.endswith("*"):
                fixed = principal[:-1]
                if not (fixed.startswith(prefix) or prefix.startswith(fixed)):
                    continue  # another trust domain's: not ours to know
            elif not principal.startswith("*"):
                parts = principal.split("/")
                if f"{parts[0]}/" != prefix or len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
                    continue
            if not any(wildcard_match(identity, principal) for identity in identities):
                yield Message(ReferencedResourceNotFound, catalog.ref(policy), ("principal", quoted(str(written))))


def _policies(catalog: Catalog) -> Iterator[Message]:
    for policy in catalog.of_kind("AuthorizationPolicy"):
        yield from _selectors(catalog, policy)
        yield from _namespaces(catalog, policy)
        yield from _principals(catalog, policy)


AUTHORIZATION_POLICIES = Analyzer(
    "auth.AuthorizationPoliciesAnalyzer", "Checks the validity of authorization policies", _policies,
    ("AuthorizationPolicy", "WorkloadEntry", "MeshConfig"), needs_platform=True)
