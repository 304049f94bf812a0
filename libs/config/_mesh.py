"""Istio's mesh config as users write it: the `mesh` key of the ConfigMap named `istio`.

Istio reads MeshConfig from that ConfigMap (`kubectl -n istio-system edit cm istio`), and
a user's file or cluster already holds it in that shape, so it is the shape Mizzen
accepts.  It becomes the internal kind `MeshConfig` (apiVersion v1), whose spec is the
parsed `mesh` document; every other ConfigMap is not Mizzen's config.
"""

from __future__ import annotations

from typing import Any

from libs.config._errors import DocumentError, FieldError, Origin, ResourceInvalid, UnsupportedKind
from libs.config._kinds import MESH_CONFIG_KIND
from libs.config._loader import load_documents

# Istio's names for it: `istio`, and `istio-<revision>` for a revisioned control plane.
MESH_CONFIGMAP = "istio"
MESH_KEY = "mesh"


def is_mesh_configmap(name: str) -> bool:
    return name == MESH_CONFIGMAP or name.startswith(f"{MESH_CONFIGMAP}-")


def configmap_to_mesh_config(body: dict[str, Any], origin: Origin, namespace: str, name: str) -> dict[str, Any]:
    """The `istio` ConfigMap as a `MeshConfig` document for `parse_resource`; raise
    `UnsupportedKind` for any other ConfigMap, `ResourceInvalid` when `data.mesh` is not YAML."""
    if not is_mesh_configmap(name):
        raise UnsupportedKind(origin, "v1", "ConfigMap", namespace, name)
    data = body.get("data") or {}
    text = data.get(MESH_KEY, "") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise ResourceInvalid("ConfigMap", namespace, name,
                              [FieldError(f"data.{MESH_KEY}", "must be a string holding the mesh config YAML")], origin)
    try:
        documents = load_documents(text, f"{origin}:data.{MESH_KEY}")
    except DocumentError as exc:
        raise ResourceInvalid("ConfigMap", namespace, name, [FieldError(f"data.{MESH_KEY}", exc.reason)],
                              origin) from exc
    if len(documents) > 1:
        raise ResourceInvalid("ConfigMap", namespace, name,
                              [FieldError(f"data.{MESH_KEY}", "must hold one YAML document")], origin)
    spec = documents[0].body if documents else {}
    metadata = {key: value for key, value in (body.get("metadata") or {}).items()}
    metadata.setdefault("namespace", namespace)
    return {"apiVersion": "v1", "kind": MESH_CONFIG_KIND, "metadata": metadata, "spec": spec}
