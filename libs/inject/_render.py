"""A pod in, the same pod with its sidecar out: pure, and all or nothing.

Every input is parsed and checked (annotations, ProxyConfig, probes, names) before the
copy is changed, so an error leaves no half-injected pod behind; the caller gets either
the injected pod or an `InvalidPod` naming the field.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from libs.inject._annotations import (
    CANONICAL_NAME,
    CANONICAL_REVISION,
    DEFAULT_CONTAINER,
    PROXY_CONFIG,
    PROXY_IMAGE,
    STATUS,
    TLS_MODE,
    capture_settings,
    interception_mode,
    path_of,
    proxy_resources,
    rewrite_probes,
)
from libs.inject._config import InjectionConfig
from libs.inject._errors import InvalidPod
from libs.inject._mesh import DEFAULT_DISCOVERY_ADDRESS, DEFAULT_STATUS_PORT, MeshSettings, proxy_config
from libs.inject._probes import rewrite_probes as rewrite_app_probes
from libs.inject._quantity import parse_quantity
from libs.inject._template import (
    INIT_CONTAINER,
    PROXY_CONTAINER,
    VOLUMES,
    Sidecar,
    init_container,
    proxy_container,
    status,
    volumes,
)
from libs.inject._workload import Workload

PROXY_GROUP = 1337


def _containers(spec: Mapping[str, Any], field: str, *, required: bool) -> list[dict[str, Any]]:
    containers = spec.get(field) or []
    if not isinstance(containers, list) or (required and not containers):
        raise InvalidPod(f"spec.{field}", "must be a list of at least one container" if required else "must be a list")
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            raise InvalidPod(f"spec.{field}[{i}]", "must be a container with a name")
    return containers


def _check_names(spec: Mapping[str, Any]) -> None:
    """The names the sidecar brings must be free: two containers or volumes of one name
    would make the API server refuse the pod, with a message about neither."""
    for field, reserved in (("containers", (PROXY_CONTAINER, INIT_CONTAINER)),
                            ("initContainers", (PROXY_CONTAINER, INIT_CONTAINER))):
        for i, container in enumerate(_containers(spec, field, required=field == "containers")):
            if container["name"] in reserved:
                raise InvalidPod(f"spec.{field}[{i}].name", f"{container['name']} is the name of an injected "
                                                            "container; rename this one")
    for i, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict) and volume.get("name") in {name for name, _, _ in VOLUMES}:
            raise InvalidPod(f"spec.volumes[{i}].name", f"{volume['name']} is the name of an injected volume; "
                                                         "rename this one")


def _concurrency(config: Mapping[str, Any], resources: Mapping[str, Mapping[str, str]]) -> int | None:
    """Envoy's worker threads; None leaves the agent's default (2, Istio's too)."""
    concurrency = config.get("concurrency")
    if concurrency is None or concurrency > 0:
        return concurrency
    # 0: as Istio, one worker per CPU the proxy may use: its limit, else its request.
    cpu = (resources.get("limits") or {}).get("cpu") or (resources.get("requests") or {}).get("cpu")
    return max(1, math.ceil(parse_quantity(cpu))) if cpu else None


def _canonical_labels(labels: dict[str, str], workload: Workload) -> None:
    """Istio's canonical service labels, for telemetry, unless the pod sets them."""
    labels.setdefault(TLS_MODE, "istio")
    labels.setdefault(CANONICAL_NAME, labels.get("app.kubernetes.io/name") or labels.get("app") or workload.name)
    labels.setdefault(CANONICAL_REVISION, labels.get("app.kubernetes.io/version") or labels.get("version")
                      or "latest")


def render(pod: Mapping[str, Any], namespace: str, workload: Workload, config: InjectionConfig,
           mesh: MeshSettings) -> dict[str, Any]:
    """`pod` (a Pod, or a pod template: metadata and spec) with Istio's sidecar added."""
    injected = copy.deepcopy(dict(pod))
    metadata = injected.get("metadata") or {}
    spec = injected.get("spec") or {}
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        raise InvalidPod("metadata" if not isinstance(metadata, dict) else "spec", "must be an object")
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    _check_names(spec)
    interception_mode(annotations)
    values = config.values
    proxy = proxy_config(mesh, annotations.get(PROXY_CONFIG), path_of(PROXY_CONFIG))
    status_port = int(proxy.get("statusPort", DEFAULT_STATUS_PORT))
    capture = capture_settings(annotations, status_port)
    resources = proxy_resources(annotations, values.proxy_resources)
    containers = _containers(spec, "containers", required=True)
    probers = (rewrite_app_probes(containers, status_port)
               if rewrite_probes(annotations, values.rewrite_app_probes) else {})
    _canonical_labels(labels, workload)
    sidecar = Sidecar(
        namespace=namespace, workload=workload, labels=labels, annotations=annotations, proxy_config=proxy,
        capture=capture, resources=resources, status_port=status_port,
        discovery_address=str(proxy.get("discoveryAddress", DEFAULT_DISCOVERY_ADDRESS)),
        concurrency=_concurrency(proxy, resources),
        proxy_image=annotations.get(PROXY_IMAGE) or values.image(values.proxy_image),
        init_image=values.image(values.proxy_init_image), trust_domain=mesh.trust_domain, probers=probers,
        app_containers=tuple(c["name"] for c in containers),
        app_ports=tuple(copy.deepcopy(p) for c in containers for p in c.get("ports") or []),
    )
    spec["initContainers"] = [*_containers(spec, "initContainers", required=False), init_container(sidecar, values)]
    spec["containers"] = [*containers, proxy_container(sidecar, values)]
    spec["volumes"] = [*(spec.get("volumes") or []), *volumes()]
    secrets = spec.get("imagePullSecrets") or []
    secrets += [{"name": name} for name in values.image_pull_secrets if {"name": name} not in secrets]
    if secrets:
        spec["imagePullSecrets"] = secrets
    # The projected token is readable by the proxy's group; an app's own fsGroup is kept.
    security = spec.get("securityContext") or {}
    if "fsGroup" not in security:
        spec["securityContext"] = {**security, "fsGroup": PROXY_GROUP}
    annotations.setdefault(DEFAULT_CONTAINER, containers[0]["name"])
    annotations.update(config.injected_annotations)
    annotations[STATUS] = status(values)
    metadata["annotations"] = annotations
    metadata["labels"] = labels
    injected["metadata"] = metadata
    injected["spec"] = spec
    return injected
