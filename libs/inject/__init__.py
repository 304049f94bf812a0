"""Sidecar injection, pure: a pod and the config in; the injected pod and a JSON patch out.

Shared by the sidecar injector's admission webhook and `mizzenctl kube-inject`, so both
give the same pod.  Reading order: `_decision` (whether: Istio's rules), `_render` (the
pod with its sidecar: `_annotations` parsed, `_probes` rewritten, `_template`'s
containers and volumes added), `_inject` (both, plus the checked patch).  The config is
Istio's `istio-sidecar-injector` ConfigMap (`_config`) and the mesh config's
`defaultConfig` (`_mesh`).  No I/O, no globals; errors in `_errors`.
"""

from libs.inject._annotations import INJECT, PROXY_CONFIG, STATUS
from libs.inject._config import (
    InjectionConfig,
    Values,
    injection_config_from_configmap,
    load_injection_config,
)
from libs.inject._decision import IGNORED_NAMESPACES, Decision, decide
from libs.inject._errors import InconsistentPatch, InjectError, InvalidConfig, InvalidPod
from libs.inject._inject import Injection, inject
from libs.inject._mesh import DEFAULT_STATUS_PORT, MeshSettings, load_mesh_config
from libs.inject._probes import rewrite_probes
from libs.inject._render import render
from libs.inject._template import INIT_CONTAINER, PROXY_CONTAINER
from libs.inject._workload import Workload, pod_name, workload_of_pod

__all__ = [
    "DEFAULT_STATUS_PORT",
    "IGNORED_NAMESPACES",
    "INIT_CONTAINER",
    "INJECT",
    "PROXY_CONFIG",
    "PROXY_CONTAINER",
    "STATUS",
    "Decision",
    "InconsistentPatch",
    "InjectError",
    "Injection",
    "InjectionConfig",
    "InvalidConfig",
    "InvalidPod",
    "MeshSettings",
    "Values",
    "Workload",
    "decide",
    "inject",
    "injection_config_from_configmap",
    "load_injection_config",
    "load_mesh_config",
    "pod_name",
    "render",
    "rewrite_probes",
    "workload_of_pod",
]
