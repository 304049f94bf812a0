"""Server-side apply: a `PATCH` with `application/apply-patch+yaml`, as `kubectl apply
--server-side` sends it, answered as the API server answers it for the cases an installation
exercises.

- Create or update: applying a name that does not exist creates the object.
- Field ownership: the manager (`?fieldManager=`, required) owns the fields its configuration
  sets, recorded in `metadata.managedFields` (operation Apply, FieldsV1 as the real server
  writes it: `f:<field>`, `k:{"name":"x"}` for an item of a keyed list, `v:<json>` for a member
  of a set).  A field the manager set last time and leaves out now is removed, unless another
  manager owns it too; applying the same configuration again writes nothing.
- Lists merge as the type declares them (containers by `name`, ports by `containerPort`,
  webhooks by `name`); every other list, and every list of a custom resource, is atomic.
- A field another manager owns with a different value is a 409 Conflict naming the field and
  the manager, as kubectl prints it, unless `force=true`, which takes the field over.

Writes by the other verbs own no fields here (the real server records them as Update
managers), so a conflict can only be with another apply manager.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tests.harness.kube_patch import Meta, merge_schema
from tests.harness.kube_resources import ResourceType
from tests.harness.kube_store import StoreError

Path = tuple[str, ...]
_MISSING = object()
# Set by the server, never owned by a manager.
_SERVER_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "deletionTimestamp", "selfLink")


def _key_element(item: Mapping[str, Any], key: str) -> str:
    return "k:" + json.dumps({key: item.get(key)}, separators=(",", ":"))


def field_set(obj: Mapping[str, Any], schema: Mapping[str, Meta], prefix: Path = (), *,
              top: bool = True) -> set[Path]:
    """The fields `obj` sets, one path per leaf (and one per item of a keyed list)."""
    found: set[Path] = set()
    for name, value in obj.items():
        if top and name in ("apiVersion", "kind"):
            continue
        if prefix == ("f:metadata",) and name in _SERVER_METADATA:
            continue
        path = (*prefix, f"f:{name}")
        meta = schema.get(name, Meta())
        if isinstance(value, dict) and value:
            found |= field_set(value, meta.fields, path, top=False)
        elif isinstance(value, list) and meta.merge and meta.key is not None:
            for item in value:
                if not isinstance(item, dict) or meta.key not in item:
                    raise StoreError(422, "Invalid", f"{_dotted(path)}: Invalid value: each item needs its "
                                     f"key field {meta.key!r}")
                item_path = (*path, _key_element(item, meta.key))
                found.add(item_path)
                found |= field_set(item, meta.fields, item_path, top=False)
        elif isinstance(value, list) and meta.merge:
            found |= {(*path, "v:" + json.dumps(v, separators=(",", ":"))) for v in value}
        else:
            found.add(path)
    return found


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        if path[-1].startswith("k:"):
            node.setdefault(".", {})
    return tree


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for element, sub in tree.items():
        if element == ".":
            found.add(prefix)
        elif not sub:
            found.add((*prefix, element))
        else:
            found |= from_fields_v1(sub, (*prefix, element))
    return found


def _step(node: Any, element: str) -> Any:
    if element.startswith("f:"):
        return node.get(element[2:], _MISSING) if isinstance(node, dict) else _MISSING
    if element.startswith("k:"):
        wanted = json.loads(element[2:])
        if isinstance(node, list):
            for item in node:
                if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
                    return item
        return _MISSING
    value = json.loads(element[2:])  # v:<json>
    return value if isinstance(node, list) and value in node else _MISSING


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for element in path:
        node = _step(node, element)
        if node is _MISSING:
            break
    return node


def _remove(obj: Any, path: Path) -> None:
    parent = value_at(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        target = _step(parent, last)
        if target is not _MISSING:
            parent.remove(target)


def _merge(live: Any, applied: Any, meta: Meta) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        result = dict(live)
        for name, value in applied.items():
            result[name] = _merge(live.get(name, _MISSING), value, meta.fields.get(name, Meta()))
        return result
    if isinstance(live, list) and isinstance(applied, list) and meta.merge:
        if meta.key is None:
            return list(dict.fromkeys([*live, *applied]))
        result_items = copy.deepcopy(live)
        for item in applied:
            index = next((i for i, o in enumerate(result_items)
                          if isinstance(o, dict) and o.get(meta.key) == item.get(meta.key)), None)
            if index is None:
                result_items.append(copy.deepcopy(item))
            else:
                result_items[index] = _merge(result_items[index], item, Meta(fields=meta.fields))
        return result_items
    return copy.deepcopy(applied)


def _dotted(path: Path) -> str:
    """A path as the API server names it in a conflict: `.spec.containers[name="app"].image`."""
    text = ""
    for element in path:
        if element.startswith("f:"):
            text += "." + element[2:]
        elif element.startswith("k:"):
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(element[2:]).items()) + "]"
        else:
            text += f"[={element[2:]}]"
    return text


def _entries(obj: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return list(((obj or {}).get("metadata") or {}).get("managedFields") or [])


def apply(live: dict[str, Any] | None, config: dict[str, Any], rtype: ResourceType, *, manager: str,
          force: bool) -> dict[str, Any]:
    """The object after `manager` applies `config` to `live` (None: it does not exist yet)."""
    if not manager:
        raise StoreError(400, "BadRequest", "PATCH, application/apply-patch+yaml: fieldManager is required "
                         "for apply requests")
    schema = merge_schema(rtype)
    config = copy.deepcopy(config)
    config["metadata"] = {k: v for k, v in config["metadata"].items() if k != "managedFields"}
    wanted = field_set(config, schema)
    mine: set[Path] = set()
    others: list[tuple[dict[str, Any], set[Path]]] = []
    for entry in _entries(live):
        fields = from_fields_v1(entry.get("fieldsV1") or {})
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            mine = fields
        else:
            others.append((entry, fields))
    conflicts = [(path, entry) for entry, fields in others for path in sorted(wanted & fields)
                 if not path[-1].startswith("k:") and value_at(live, path) != value_at(config, path)]
    if conflicts and not force:
        causes = [{"type": "FieldManagerConflict", "field": _dotted(path),
                   "message": f'conflict with "{entry.get("manager")}" using {entry.get("apiVersion")}'}
                  for path, entry in conflicts]
        by_manager: dict[str, list[str]] = {}
        for cause in causes:
            by_manager.setdefault(cause["message"].removeprefix("conflict with "), []).append(cause["field"])
        # As the API server words it: one line per manager, its fields listed when several.
        parts = [f"conflict with {who}: {fields[0]}" if len(fields) == 1
                 else f"conflicts with {who}:" + "".join(f"\n- {f}" for f in fields)
                 for who, fields in by_manager.items()]
        raise StoreError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                         f"{'s' if len(conflicts) > 1 else ''}: " + "\n".join(parts), {"causes": causes})
    if force:
        others = [(entry, fields - wanted) for entry, fields in others]
    owned_by_others = set().union(*(fields for _, fields in others))
    result = copy.deepcopy(live) if live is not None else {"metadata": {}}
    # Shallowest first: an item goes whole, with the fields inside it.
    removed: list[Path] = []
    for path in sorted(mine - wanted - owned_by_others, key=len):
        if any(path[:len(done)] == done for done in removed):
            continue
        if not any(other[:len(path)] == path for other in owned_by_others):
            _remove(result, path)
            removed.append(path)
    result = _merge(result, {k: v for k, v in config.items() if k != "metadata"}, Meta(fields=schema))
    result["metadata"] = _merge(result.get("metadata") or {}, config["metadata"], schema["metadata"])
    previous = next((e for e in _entries(live) if e.get("manager") == manager and e.get("operation") == "Apply"),
                    None)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": config.get("apiVersion"),
             "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "fieldsType": "FieldsV1",
             "fieldsV1": to_fields_v1(wanted)}
    if previous is not None and previous.get("fieldsV1") == entry["fieldsV1"]:
        entry["time"] = previous.get("time")  # nothing new owned: an unchanged apply writes nothing
    kept = [{**e, "fieldsV1": to_fields_v1(fields)} if force else e for e, fields in others if fields]
    result["metadata"]["managedFields"] = [*kept, entry]
    return result
