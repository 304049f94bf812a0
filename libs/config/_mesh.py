"""The ConfigMaps that are Mizzen's config, as users write them.

- Istio's mesh config: the `mesh` key of the ConfigMap named `istio`.  Istio reads
  MeshConfig from that ConfigMap (`kubectl -n istio-system edit cm istio`), and a user's
  file or cluster already holds it in that shape.  It becomes the internal kind
  `MeshConfig` (apiVersion v1), whose spec is the parsed `mesh` document.
- envoyproxy/ratelimit's configuration: the ConfigMap `ratelimit-config` of Istio's
  "Enabling Rate Limits using Envoy" task, one configuration per data entry.  It becomes
  the internal kind `RateLimitConfig`, whose spec's `configs` maps each entry to its
  parsed document.

Every other ConfigMap is not Mizzen's config.
"""

from __future__ import annotations

from typing import Any

from libs.config._errors import DocumentError, FieldError, Origin, ResourceInvalid, UnsupportedKind
from libs.config._kinds import MESH_CONFIG_KIND, RATELIMIT_CONFIG_KIND
from libs.config._loader import load_documents

# Istio's names for it: `istio`, and `istio-<revision>` for a revisioned control plane.
MESH_CONFIGMAP = "istio"
MESH_KEY = "mesh"
RATELIMIT_CONFIGMAP = "ratelimit-config"


def is_mesh_configmap(name: str) -> bool:
    return name == MESH_CONFIGMAP or name.startswith(f"{MESH_CONFIGMAP}-")


def _entry(data: Any, key: str, origin: Origin, namespace: str, name: str, what: str) -> Any:
    """The one YAML document a data entry holds ({} when empty)."""
    text = data.get(key, "") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise ResourceInvalid("ConfigMap", namespace, name,
                              [FieldError(f"data.{key}", f"must be a string holding {what} YAML")], origin)
    try:
        documents = load_documents(text, f"{origin}:data.{key}")
    except DocumentError as exc:
        raise ResourceInvalid("ConfigMap", namespace, name, [FieldError(f"data.{key}", exc.reason)],
                              origin) from exc
    if len(documents) > 1:
        raise ResourceInvalid("ConfigMap", namespace, name,
                              [FieldError(f"data.{key}", "must hold one YAML document")], origin)
    return documents[0].body if documents else {}


def configmap_to_resource(body: dict[str, Any], origin: Origin, namespace: str, name: str) -> dict[str, Any]:
    """The `istio` or `ratelimit-config` ConfigMap as a `MeshConfig` or `RateLimitConfig`
    document for `parse_resource`; raise `UnsupportedKind` for any other ConfigMap,
    `ResourceInvalid` when a data entry is not YAML."""
    metadata = {key: value for key, value in (body.get("metadata") or {}).items()}
    metadata.setdefault("namespace", namespace)
    data = body.get("data") or {}
    if is_mesh_configmap(name):
        spec = _entry(data, MESH_KEY, origin, namespace, name, "the mesh config")
        return {"apiVersion": "v1", "kind": MESH_CONFIG_KIND, "metadata": metadata, "spec": spec}
    if name == RATELIMIT_CONFIGMAP:
        keys = sorted(data) if isinstance(data, dict) else []
        configs = {key: _entry(data, key, origin, namespace, name, "a rate-limit configuration") for key in keys}
        return {"apiVersion": "v1", "kind": RATELIMIT_CONFIG_KIND, "metadata": metadata,
                "spec": {"configs": configs}}
    raise UnsupportedKind(origin, "v1", "ConfigMap", namespace, name)
