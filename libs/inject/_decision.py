"""Whether a pod gets a sidecar: Istio's injection decision, pure.

In order: a pod already injected, on the host network, or in a Kubernetes system
namespace never does; then the pod's own `sidecar.istio.io/inject` (the label, else the
annotation) decides; then the config's neverInjectSelector, then alwaysInjectSelector;
then the namespace (when its labels are known: `istio-injection=enabled`, or
`istio.io/rev` naming this injector's revision); last the config's policy.

The webhook passes no namespace labels: its namespaceSelector already sent only pods of
opted-in namespaces (and pods that opted in themselves), as Istio's does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libs.inject._annotations import INJECT, STATUS
from libs.inject._config import InjectionConfig

IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# YAML's words for true (Istio's list); any other non-empty value means "do not inject".
_YES = frozenset({"y", "yes", "true", "on"})
NAMESPACE_INJECTION = "istio-injection"
NAMESPACE_REVISION = "istio.io/rev"


@dataclass(frozen=True)
class Decision:
    inject: bool
    reason: str


def _skip(reason: str) -> Decision:
    return Decision(False, reason)


def _namespace_policy(namespace: str, labels: Mapping[str, str], config: InjectionConfig) -> Decision | None:
    """A skip when the namespace has not opted in to this injector; None when it has."""
    injection = labels.get(NAMESPACE_INJECTION)
    revision = labels.get(NAMESPACE_REVISION)
    if injection == "disabled":
        return _skip(f"namespace {namespace} is labelled {NAMESPACE_INJECTION}=disabled")
    if injection == "enabled":
        return None
    if revision is not None:
        if revision == config.values.revision_name:
            return None
        return _skip(f"namespace {namespace} selects revision {revision!r}; this injector serves "
                     f"{config.values.revision_name!r}")
    return _skip(f"namespace {namespace} is not labelled {NAMESPACE_INJECTION}=enabled or {NAMESPACE_REVISION}")


def decide(metadata: Mapping[str, Any], spec: Mapping[str, Any], namespace: str, config: InjectionConfig,
           namespace_labels: Mapping[str, str] | None = None) -> Decision:
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    if STATUS in annotations:
        return _skip(f"already injected ({STATUS} is set)")
    if spec.get("hostNetwork"):
        # iptables in a host-network pod would rewrite the node's routing.
        return _skip("the pod uses the host network")
    if namespace in IGNORED_NAMESPACES:
        return _skip(f"namespace {namespace} is a Kubernetes system namespace")
    # The label is the newer API; when both are set, the label wins.
    source = "label" if INJECT in labels else "annotation"
    explicit = str(labels.get(INJECT, annotations.get(INJECT, ""))).strip().lower()
    if explicit in _YES:
        return Decision(True, f"the pod's {source} {INJECT}={explicit}")
    if explicit:
        return _skip(f"the pod's {source} {INJECT}={explicit}")
    # An empty selector matches nothing here, as in Istio's injector: an empty entry must not
    # exempt (or inject) every pod.
    for i, selector in enumerate(config.never_inject):
        if selector.requirements and selector.matches(labels):
            return _skip(f"the pod's labels match neverInjectSelector[{i}]")
    for i, selector in enumerate(config.always_inject):
        if selector.requirements and selector.matches(labels):
            return Decision(True, f"the pod's labels match alwaysInjectSelector[{i}]")
    if namespace_labels is not None:
        skipped = _namespace_policy(namespace, namespace_labels, config)
        if skipped is not None:
            return skipped
    if config.policy == "enabled":
        return Decision(True, "policy enabled")
    return _skip("policy disabled, and the pod does not ask for a sidecar")
