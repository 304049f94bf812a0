"""The fake API server's PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
Kubernetes' strategic merge patch, as `kubectl apply`, `kubectl patch` and the `kubernetes`
client send them.

A strategic merge patch merges lists by a key the type declares (containers by `name`, service
ports by `port`), honours the directives client-side apply emits (`$patch: delete|replace|merge`,
`$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`) and, as on a real
server, is refused (415) for custom resources, which have no declared merge keys.  The patch
metadata below is the built-in types' `patchStrategy`/`patchMergeKey` for the types served.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.harness.kube_resources import ResourceType
from tests.harness.kube_store import StoreError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Meta:
    """How a strategic merge patch treats one field: a list is replaced whole unless `merge`,
    then merged by `key` (None: a list of scalars, merged as a set); `fields` describes the
    field's own fields (or its items')."""

    merge: bool = False
    key: str | None = None
    fields: Mapping[str, Meta] = field(default_factory=dict)


def _by(key: str | None, **fields: Meta) -> Meta:
    return Meta(merge=True, key=key, fields=fields)


_CONTAINER = {"ports": _by("containerPort"), "env": _by("name"), "volumeMounts": _by("mountPath"),
              "volumeDevices": _by("devicePath")}
_METADATA = Meta(fields={"finalizers": _by(None), "ownerReferences": _by("uid")})
_CONDITIONS = _by("type")
_POD_SPEC = Meta(fields={
    "containers": _by("name", **_CONTAINER), "initContainers": _by("name", **_CONTAINER),
    "ephemeralContainers": _by("name", **_CONTAINER), "volumes": _by("name"),
    "imagePullSecrets": _by("name"), "hostAliases": _by("ip"),
    "topologySpreadConstraints": _by("topologyKey"), "resourceClaims": _by("name"),
    "schedulingGates": _by("name")})
PATCH_META: dict[tuple[str, str], Mapping[str, Meta]] = {
    ("", "pods"): {
        "spec": _POD_SPEC,
        "status": Meta(fields={"conditions": _CONDITIONS, "podIPs": _by("ip"), "hostIPs": _by("ip")}),
    },
    ("apps", "deployments"): {
        "spec": Meta(fields={"template": Meta(fields={"metadata": _METADATA, "spec": _POD_SPEC})}),
        "status": Meta(fields={"conditions": _CONDITIONS}),
    },
    ("apps", "statefulsets"): {
        "spec": Meta(fields={"template": Meta(fields={"metadata": _METADATA, "spec": _POD_SPEC})}),
        "status": Meta(fields={"conditions": _CONDITIONS}),
    },
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): {"webhooks": _by("name")},
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): {"webhooks": _by("name")},
    ("", "services"): {"spec": Meta(fields={"ports": _by("port")}),
                       "status": Meta(fields={"conditions": _CONDITIONS})},
    ("", "serviceaccounts"): {"secrets": _by("name"), "imagePullSecrets": _by("name")},
    ("", "nodes"): {"spec": Meta(fields={"podCIDRs": _by(None)}),
                    "status": Meta(fields={"conditions": _CONDITIONS, "addresses": _by("type")})},
    ("", "namespaces"): {"status": Meta(fields={"conditions": _CONDITIONS})},
}


def merge_schema(rtype: ResourceType) -> Mapping[str, Meta]:
    """How `rtype`'s lists merge (by which key), from its metadata down; a custom resource
    declares none, so its lists are atomic."""
    if rtype.custom:
        return {"metadata": _METADATA}
    return {"metadata": _METADATA, **PATCH_META.get(rtype.group_resource, {})}


def apply_patch(content_type: str, obj: dict[str, Any], patch: Any, rtype: ResourceType) -> dict[str, Any]:
    """`obj` (not modified) with `patch` applied, as the API server applies a PATCH of this type."""
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise StoreError(400, "BadRequest", "a merge patch must be a JSON object")
        return merge_patch(obj, patch)
    if content_type == JSON_PATCH:
        return json_patch(obj, patch)
    if content_type == STRATEGIC_MERGE_PATCH and not rtype.custom:
        if not isinstance(patch, dict):
            raise StoreError(400, "BadRequest", "a strategic merge patch must be a JSON object")
        return _merge_map(obj, patch, merge_schema(rtype))
    accepted = [JSON_PATCH, MERGE_PATCH] if rtype.custom else [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]
    raise StoreError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                     f"accepted media types include: {', '.join(accepted)}")


# -- JSON merge patch -----------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- JSON patch -----------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    parts = _pointer(path)
    if not parts:
        raise ValueError("the whole document cannot be the target")
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _remove(doc: Any, path: str) -> Any:
    parent, last = _parent(doc, path)
    return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)


def _add(doc: Any, path: str, value: Any) -> None:
    parent, last = _parent(doc, path)
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise IndexError(f"index {index} out of range")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise TypeError(f"cannot add to a {type(parent).__name__}")


def json_patch(obj: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise StoreError(400, "BadRequest", "a JSON patch must be a list of operations")
    doc = copy.deepcopy(obj)
    for operation in operations:
        try:
            op, path = operation["op"], operation["path"]
            if op == "add":
                _add(doc, path, copy.deepcopy(operation["value"]))
            elif op == "remove":
                _remove(doc, path)
            elif op == "replace":
                _remove(doc, path)
                _add(doc, path, copy.deepcopy(operation["value"]))
            elif op == "move":
                _add(doc, path, _remove(doc, operation["from"]))
            elif op == "copy":
                _add(doc, path, copy.deepcopy(_get(doc, operation["from"])))
            elif op == "test":
                if _get(doc, path) != operation["value"]:
                    raise ValueError(f"testing value {path} failed: test failed")
            else:
                raise ValueError(f"unexpected kind: {op}")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            # As the API server reports a patch that does not apply (NewGenericServerResponse).
            raise StoreError(422, "Invalid", "the server rejected our request due to an error in our request",
                             {"causes": [{"reason": "UnexpectedServerResponse", "message": str(exc)}]}) from exc
    return doc


# -- strategic merge patch ------------------------------------------------------------------

_DIRECTIVE = "$patch"
_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


def _bad(message: str) -> StoreError:
    return StoreError(400, "BadRequest", message)


def _strip(value: Any) -> Any:
    """A patch value taken as it is (no original to merge with), without its directives."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and v.get(_DIRECTIVE) == "delete")]
    return value


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Mapping[str, Meta]) -> dict[str, Any]:
    directive = patch.get(_DIRECTIVE)
    if directive == "replace":
        return dict(_strip(patch))
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise _bad(f"Unknown patch type: {directive} in map: {patch}")
    result = copy.deepcopy(original)
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise _bad("doesn't support retainKeys directive with value other than a list")
        result = {k: v for k, v in result.items() if k in retain}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            name = key[len(_DELETE_FROM):]
            if not isinstance(value, list):
                raise _bad("invalid patch format for a primitive list")
            if isinstance(result.get(name), list):
                result[name] = [item for item in result[name] if item not in value]
        elif key.startswith(_ORDER):
            if not isinstance(value, list):
                raise _bad("invalid patch format of setElementOrder list")
            orders[key[len(_ORDER):]] = value
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        meta = schema.get(key, Meta())
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge_map(result[key], value, meta.fields)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, meta)
        else:
            result[key] = _strip(value)
    for key, order in orders.items():
        meta = schema.get(key, Meta())
        if isinstance(result.get(key), list) and meta.merge:
            result[key] = _reorder(result[key], order, original.get(key) or [], meta.key)
    return result


def _merge_list(original: list[Any], patch: list[Any], meta: Meta) -> list[Any]:
    if not meta.merge:
        return list(_strip(patch))
    if meta.key is None:  # scalars: a set, in first-seen order
        return list(dict.fromkeys([*original, *patch]))
    key = meta.key
    items = copy.deepcopy(original)
    plain: list[dict[str, Any]] = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise _bad(f"a list merged by {key} must hold objects, not {item!r}")
        directive = item.get(_DIRECTIVE)
        if directive == "delete":
            if key not in item:
                raise _bad(f"map: {item} does not contain declared merge key: {key}")
            items = [o for o in items if not (isinstance(o, dict) and o.get(key) == item[key])]
        elif directive == "replace":
            replace = True
        elif directive is None:
            plain.append(item)
        else:
            raise _bad(f"Unknown patch type: {directive} in map: {item}")
    if replace:
        return list(_strip(plain))
    for item in plain:
        if key not in item:
            raise _bad(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, o in enumerate(items) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if index is None:
            items.append(_strip(item))
        else:
            items[index] = _merge_map(items[index], item, meta.fields)
    return items


def _reorder(merged: list[Any], order: list[Any], server: list[Any], key: str | None) -> list[Any]:
    """`$setElementOrder`: the patch's items in the patch's order, the server-only items kept
    where they were (Kubernetes' normalizeElementOrder and mergeSortedSlice)."""

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    in_patch = sorted((m for m in merged if ident(m) in wanted), key=lambda m: wanted.index(ident(m)))
    server_ids = [ident(s) for s in server]
    server_only = sorted((m for m in merged if ident(m) not in wanted),
                         key=lambda m: server_ids.index(ident(m)) if ident(m) in server_ids else len(server_ids))
    result: list[Any] = []
    i = j = 0
    while i < len(in_patch) or j < len(server_only):
        if j >= len(server_only):
            result.append(in_patch[i])
            i += 1
        elif i >= len(in_patch):
            result.append(server_only[j])
            j += 1
        else:
            left, right = ident(in_patch[i]), ident(server_only[j])
            if left in server_ids and right in server_ids and server_ids.index(left) < server_ids.index(right):
                result.append(in_patch[i])
                i += 1
            else:
                result.append(server_only[j])
                j += 1
    return result
