"""Kubernetes objects as the directory's sources: Pods are workloads at their IPs, Services
select them by label.  Pure; the services that watch the API server (telemetry, policy)
feed it the objects their informers hold.

A pod's workload name is its controller's, as Istio's telemetry reports it: a ReplicaSet
owner stands for its Deployment (the ReplicaSet name without its pod-template hash), any
other controller for itself, and a bare pod for its own name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from libs.config.workloads import WorkloadRegistration

SIDECAR_STATUS = "sidecar.istio.io/status"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
# Kubernetes' pod-template-hash label: how a ReplicaSet's name extends its Deployment's.
TEMPLATE_HASH = "pod-template-hash"


def workload_name(pod: Mapping[str, Any]) -> str:
    metadata = pod.get("metadata") or {}
    owners = [o for o in metadata.get("ownerReferences") or () if o.get("controller")]
    if not owners:
        return str(metadata.get("name") or "")
    owner = owners[0]
    name = str(owner.get("name") or "")
    template_hash = (metadata.get("labels") or {}).get(TEMPLATE_HASH, "")
    if owner.get("kind") == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
        return name[: -len(template_hash) - 1]
    return name


def pod_registration(pod: Mapping[str, Any]) -> WorkloadRegistration | None:
    """A running pod with an IP as the directory's workload; None otherwise."""
    status = pod.get("status") or {}
    address = str(status.get("podIP") or "")
    if not address or status.get("phase") in ("Succeeded", "Failed"):
        return None
    metadata = pod.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    sidecar = bool((metadata.get("annotations") or {}).get(SIDECAR_STATUS)) or labels.get(TLS_MODE_LABEL) == "istio"
    return WorkloadRegistration(name=workload_name(pod), namespace=str(metadata.get("namespace") or "default"),
                                address=address, labels=labels,
                                service_account=str((pod.get("spec") or {}).get("serviceAccountName") or "default"),
                                sidecar=sidecar)


def service_selectors(services: Iterable[Mapping[str, Any]], domain_suffix: str
                      ) -> list[tuple[str, str, dict[str, str]]]:
    """(host, namespace, selector) of every Service that selects pods."""
    found = []
    for service in services:
        metadata = service.get("metadata") or {}
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            continue
        namespace, name = str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")
        found.append((f"{name}.{namespace}.svc.{domain_suffix}", namespace,
                      {str(k): str(v) for k, v in selector.items()}))
    return found
