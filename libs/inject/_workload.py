"""Which workload a pod belongs to: its Deployment (or other controller), for the proxy's
ISTIO_META_WORKLOAD_NAME and ISTIO_META_OWNER, as Istio names them.

kube-inject knows the enclosing object; the webhook sees only the pod, and follows Istio:
the controlling owner reference, a ReplicaSet named `<deployment>-<pod-template-hash>`
standing for its Deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Workload:
    kind: str
    api_version: str
    name: str

    def owner(self, namespace: str) -> str:
        """Istio's ISTIO_META_OWNER: kubernetes://apis/apps/v1/namespaces/ns/deployments/name."""
        return f"kubernetes://apis/{self.api_version}/namespaces/{namespace}/{self.kind.lower()}s/{self.name}"


def pod_name(metadata: Mapping[str, Any]) -> str:
    """The pod's name, or before the API server names it, its generateName prefix."""
    return str(metadata.get("name") or str(metadata.get("generateName") or "").rstrip("-"))


def workload_of_pod(metadata: Mapping[str, Any]) -> Workload:
    owners = metadata.get("ownerReferences") or []
    controller = next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
    if controller is None:
        return Workload("Pod", "v1", pod_name(metadata))
    kind, name = str(controller.get("kind", "")), str(controller.get("name", ""))
    api_version = str(controller.get("apiVersion", "v1"))
    template_hash = (metadata.get("labels") or {}).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
        return Workload("Deployment", "apps/v1", name[: -len(template_hash) - 1])
    return Workload(kind, api_version, name)
