"""Which API a resource lives at, and which generated client method lists and watches it.

Requests go through the client's generated methods (`CustomObjectsApi` for every named group,
`CoreV1Api` for the core group) rather than `ApiClient.call_api`, whose signature changed
between client releases; with `_preload_content=False` every one of them hands back the raw
urllib3 response, so objects stay plain JSON dicts whatever their kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a method is looked up: see _client.py
    from kubernetes import client

# The core group has no generic method; its methods are named after the singular, in snake case.
_CORE_SINGULAR = {
    "pods": "pod",
    "services": "service",
    "serviceaccounts": "service_account",
    "secrets": "secret",
    "configmaps": "config_map",
    "endpoints": "endpoints",
    "namespaces": "namespace",
    "nodes": "node",
}
# The PATCH bodies Mizzen sends (the client would otherwise pick one by the body's type).
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A resource type at one served version: `group` is "" for the core (`/api/v1`) group."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        # kubectl's fully qualified spelling: virtualservices.v1.networking.istio.io
        return ".".join(part for part in (self.plural, self.version, self.group) if part)


def list_method(api: client.ApiClient, ref: ResourceRef, namespace: str | None) -> Callable[..., Any]:
    """The generated method that lists (or, with `watch=True`, watches) `ref`, its path
    parameters bound; `namespace=None` means every namespace."""
    from kubernetes import client

    if ref.group:
        custom = client.CustomObjectsApi(api)
        if namespace is None or not ref.namespaced:
            return _bind(custom.list_cluster_custom_object, group=ref.group, version=ref.version,
                         plural=ref.plural)
        return _bind(custom.list_namespaced_custom_object, group=ref.group, version=ref.version,
                     namespace=namespace, plural=ref.plural)
    singular = _CORE_SINGULAR.get(ref.plural)
    if singular is None or ref.version != "v1":
        raise ValueError(f"core resource {ref} is not one libs.kube knows how to list")
    core = client.CoreV1Api(api)
    if not ref.namespaced:
        return _bind(getattr(core, f"list_{singular}"))
    if namespace is None:
        return _bind(getattr(core, f"list_{singular}_for_all_namespaces"))
    return _bind(getattr(core, f"list_namespaced_{singular}"), namespace=namespace)


def object_method(api: client.ApiClient, ref: ResourceRef, verb: str, namespace: str) -> Callable[..., Any]:
    """The generated method that reads (`verb="read"`), creates (`verb="create"`) or patches
    (`verb="patch"`) one object of `ref` in `namespace` (ignored for cluster-scoped types)."""
    from kubernetes import client

    if verb not in ("read", "create", "patch"):
        raise ValueError(f"verb {verb!r} is not read, create or patch")
    if ref.group:
        custom = client.CustomObjectsApi(api)
        # The custom-objects API spells "read" as "get".
        custom_verb = "get" if verb == "read" else verb
        if not ref.namespaced:
            return _bind(getattr(custom, f"{custom_verb}_cluster_custom_object"), group=ref.group,
                         version=ref.version, plural=ref.plural)
        return _bind(getattr(custom, f"{custom_verb}_namespaced_custom_object"), group=ref.group,
                     version=ref.version, namespace=namespace, plural=ref.plural)
    singular = _CORE_SINGULAR.get(ref.plural)
    if singular is None or ref.version != "v1":
        raise ValueError(f"core resource {ref} is not one libs.kube knows how to {verb}")
    core = client.CoreV1Api(api)
    if not ref.namespaced:
        return _bind(getattr(core, f"{verb}_{singular}"))
    return _bind(getattr(core, f"{verb}_namespaced_{singular}"), namespace=namespace)


def _bind(method: Callable[..., Any], **path: str) -> Callable[..., Any]:
    def call(**query: Any) -> Any:
        # Unset options are left out rather than trusting every generated method to skip None.
        return method(**path, **{k: v for k, v in query.items() if v is not None})

    return call
