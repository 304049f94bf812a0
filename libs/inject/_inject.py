"""Decide, render, and express the change as a JSON patch (RFC 6902), checked.

The patch is the difference between the pod as sent and the injected pod, made and then
applied back with `jsonpatch`: only a patch that turns the one into the other is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import jsonpatch

from libs.inject._config import InjectionConfig
from libs.inject._decision import Decision, decide
from libs.inject._errors import InconsistentPatch
from libs.inject._mesh import MeshSettings
from libs.inject._render import render
from libs.inject._workload import Workload


@dataclass(frozen=True)
class Injection:
    decision: Decision
    # The pod after injection; the pod as given when the decision was to skip.
    pod: Mapping[str, Any]
    # RFC 6902 operations turning the given pod into `pod` (empty when skipped).
    patch: list[dict[str, Any]] = field(default_factory=list)


def inject(pod: Mapping[str, Any], namespace: str, workload: Workload, config: InjectionConfig,
           mesh: MeshSettings, *, namespace_labels: Mapping[str, str] | None = None,
           requested: bool = False) -> Injection:
    """`requested`: the user asked for this pod to be injected (kube-inject), so the config's
    policy counts as enabled, as istioctl's does; the pod may still opt out."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    effective = replace(config, policy="enabled") if requested else config
    decision = decide(metadata, spec, namespace, effective, namespace_labels)
    if not decision.inject:
        return Injection(decision, pod)
    injected = render(pod, namespace, workload, config, mesh)
    patch = jsonpatch.make_patch(dict(pod), injected).patch
    if jsonpatch.apply_patch(dict(pod), patch) != injected:
        raise InconsistentPatch(f"the patch for {metadata.get('name') or metadata.get('generateName') or 'the pod'} "
                                "does not reproduce the injected pod")
    return Injection(decision, injected, patch)
