"""Files as analysis inputs: Istio config validated as galley would (the valid resources
analysed, the invalid ones reported as IST0106), Kubernetes manifests read as the
platform (Services, pods and pod templates, Namespaces, ServiceAccounts), as `istioctl
analyze` reads them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from libs.analysis._platform import Platform, from_kubernetes
from libs.config import DocumentError, Origin, Resource, ResourceInvalid, load_documents, parse_documents

KUBERNETES_KINDS = frozenset({"Service", "Pod", "Namespace", "ServiceAccount", "Deployment", "StatefulSet",
                              "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController"})


@dataclass
class FileInputs:
    resources: list[Resource] = field(default_factory=list)
    # `Resource.ref` -> "file.yaml[2]"
    origins: dict[str, str] = field(default_factory=dict)
    invalid: list[ResourceInvalid] = field(default_factory=list)
    platform: Platform = field(default_factory=Platform)
    # Documents that are not resources at all (bad YAML, no kind): not analysable.
    errors: list[str] = field(default_factory=list)


def _is_kubernetes(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    group = str(body.get("apiVersion") or "").rpartition("/")[0]
    return body.get("kind") in KUBERNETES_KINDS and not group.endswith("istio.io")


def _expand(origin: Origin, body: Any) -> Iterator[tuple[Origin, Any]]:
    """kubectl's `kind: List` holds its resources in `items`."""
    if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
        for i, item in enumerate(body["items"]):
            yield Origin(f"{origin}.items", i), item
    else:
        yield origin, body


def read_files(sources: Iterable[tuple[str, bytes]], *, default_namespace: str = "default") -> FileInputs:
    """`(name, content)` of each file; documents of kinds neither Istio's nor in
    `KUBERNETES_KINDS` are left out, as `istioctl analyze` leaves them."""
    found = FileInputs()
    manifests: list[tuple[str, dict[str, Any]]] = []
    for name, data in sources:
        try:
            documents = load_documents(data, name)
        except DocumentError as exc:
            found.errors.append(str(exc))
            continue
        config: list[tuple[Origin, Any]] = []
        for document in documents:
            for origin, body in _expand(document.origin, document.body):
                if _is_kubernetes(body):
                    manifests.append((str(origin), body))
                else:
                    config.append((origin, body))
        result = parse_documents(config, default_namespace=default_namespace)
        found.errors.extend(str(e) for e in result.unreadable)
        found.invalid.extend(result.invalid)
        for origin, resource in result.resources:
            # The same resource twice: the later one wins, as applying both in order would.
            found.resources = [r for r in found.resources if r.ref != resource.ref]
            found.resources.append(resource)
            found.origins[resource.ref] = str(origin)
    found.platform = from_kubernetes(manifests, default_namespace=default_namespace)
    return found


def overlay(live: Iterable[Resource], files: Iterable[Resource]) -> list[Resource]:
    """The live config with the files' resources over it: a file's resource replaces the
    live one of the same kind, namespace and name, as applying it would."""
    merged = {(r.kind, r.namespace, r.name): r for r in live}
    merged.update({(r.kind, r.namespace, r.name): r for r in files})
    return list(merged.values())
