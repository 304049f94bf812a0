"""The fake API server's REST verbs on stored objects, apart from I/O: a parsed request in, an
HTTP code and a JSON body out (watches stream, so kube_http serves them with `watcher()`).

list (label and field selectors, as a List or a Table), get, create, replace (optimistic
concurrency), patch (JSON merge, JSON patch, strategic merge, server-side apply; a no-op patch
writes nothing), delete (with DeleteOptions preconditions) and deletecollection; every write
also as a dry run (`dryRun=All`: validated and answered, not stored).  Objects are served at
the requested version: Istio's CRDs store one object and relabel it for each served version.
A CustomResourceDefinition, once stored, makes the server serve its kind (and stops it when
deleted), reported Established in its status.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from tests.harness import kube_apply
from tests.harness.kube_patch import APPLY_PATCH, apply_patch
from tests.harness.kube_resources import (
    FieldSelector,
    FieldSelectorError,
    InvalidCrd,
    ResourceType,
    Selector,
    crd_type,
    is_crd,
    parse_field_selector,
    parse_selector,
)
from tests.harness.kube_store import KubeStore, StoreError, Watcher, every_object
from tests.harness.kube_tables import INCLUDE_OBJECT, table


@dataclass(frozen=True)
class Route:
    rtype: ResourceType
    version: str
    namespace: str | None
    name: str | None

    @property
    def api_version(self) -> str:
        return self.rtype.api_version(self.version)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace or "", self.name or "")


@dataclass(frozen=True)
class Call:
    """One request on a resource, parsed."""

    method: str
    route: Route
    query: dict[str, str]
    body: Any
    content_type: str = "application/json"
    table: str | None = None  # the Table version the client asked for (meta.k8s.io/v1), if any


def not_found() -> StoreError:
    return StoreError(404, "NotFound", "the server could not find the requested resource")


def route(store: KubeStore, path: str) -> Route:
    segments = [s for s in path.split("/") if s]
    if segments[:1] == ["api"] and len(segments) >= 3:
        group, version, rest = "", segments[1], segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 4:
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise not_found()
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    rtype = store.lookup(group, version, rest[0])
    name = rest[1] if len(rest) == 2 else None
    if (rtype is None or len(rest) > 2  # subresources (status, scale) are not served
            or (namespace is not None and not rtype.namespaced)
            or (rtype.namespaced and name is not None and namespace is None)):
        raise not_found()
    return Route(rtype, version, namespace, name)


def out(route: Route, obj: dict[str, Any], *, list_item: bool = False) -> dict[str, Any]:
    """`obj` as served at the requested version (Istio's CRDs convert by relabelling)."""
    if list_item and not route.rtype.group:
        return obj  # core list items carry no apiVersion or kind, as on a real server
    return {**obj, "apiVersion": route.api_version, "kind": route.rtype.kind}


def selectors(call: Call) -> tuple[Selector, FieldSelector]:
    fields = call.query.get("fieldSelector", "")
    try:
        return (parse_selector(call.query.get("labelSelector", "")),
                parse_field_selector(fields, call.route.rtype) if fields else every_object)
    except FieldSelectorError as exc:
        raise StoreError(400, "BadRequest", str(exc)) from exc


def watcher(call: Call) -> Watcher:
    labels, fields = selectors(call)
    return Watcher(call.route.rtype, call.route.version, call.route.namespace, labels,
                   call.query.get("allowWatchBookmarks") in ("true", "1"), fields=fields)


def include_object(call: Call) -> str:
    include = call.query.get("includeObject") or "Metadata"
    if include not in INCLUDE_OBJECT:
        raise StoreError(400, "BadRequest", f"includeObject: Unsupported value: {include!r}")
    return include


def as_table(call: Call, objects: list[dict[str, Any]], resource_version: str, *,
             headers: bool = True) -> dict[str, Any]:
    assert call.table is not None
    return table(call.route.rtype, call.route.api_version, objects, resource_version=resource_version,
                 table_version=call.table, include_object=include_object(call), headers=headers)


def answer(store: KubeStore, call: Call) -> tuple[int, dict[str, Any]]:
    """The response to every verb but watch."""
    route, rtype = call.route, call.route.rtype
    dry_run = _dry_run(call)
    if call.method == "GET" and route.name is None:
        labels, fields = selectors(call)
        items, rv = store.list(rtype, route.namespace, labels, fields)
        if call.table:
            return 200, as_table(call, items, str(rv))
        return 200, {"apiVersion": route.api_version, "kind": f"{rtype.kind}List",
                     "metadata": {"resourceVersion": str(rv)}, "items": [out(route, o, list_item=True) for o in items]}
    if call.method == "GET":
        obj = store.get(rtype, route.key)
        return 200, (as_table(call, [obj], obj["metadata"]["resourceVersion"]) if call.table else out(route, obj))
    if call.method == "POST" and route.name is None:
        key = check_body(route, call.body, None)
        return 201, _installed(store, out(route, store.create(rtype, key, admit(route, call.body), dry_run=dry_run)),
                               dry_run)
    if call.method == "PUT" and route.name is not None:
        check_body(route, call.body, route.name)
        return 200, _installed(store, out(route, store.replace(rtype, route.key, admit(route, call.body),
                                                               dry_run=dry_run)), dry_run)
    if call.method == "PATCH" and route.name is not None and call.content_type == APPLY_PATCH:
        created, applied = _apply(store, call, dry_run)
        return 201 if created else 200, _installed(store, out(route, applied), dry_run)
    if call.method == "PATCH" and route.name is not None:
        return 200, _installed(store, out(route, _patch(store, call, dry_run)), dry_run)
    if call.method == "DELETE" and route.name is not None:
        options = call.body if isinstance(call.body, dict) else {}
        if rtype.group_resource == ("", "namespaces"):
            store.get(rtype, route.key)  # 404 before anything is deleted
            if not dry_run:
                _empty_namespace(store, route.name)
        deleted = store.delete(rtype, route.key, options.get("preconditions"), dry_run=dry_run)
        if is_crd(rtype) and not dry_run:
            store.remove_type(_served(deleted))
        return 200, out(route, deleted)
    if call.method == "DELETE":
        labels, fields = selectors(call)
        items, rv = store.list(rtype, route.namespace, labels, fields)
        deleted = [store.delete(rtype, (o["metadata"].get("namespace", ""), o["metadata"]["name"]), dry_run=dry_run)
                   for o in items]
        return 200, {"apiVersion": route.api_version, "kind": f"{rtype.kind}List",
                     "metadata": {"resourceVersion": str(store.resource_version)},
                     "items": [out(route, o, list_item=True) for o in deleted]}
    raise StoreError(405, "MethodNotAllowed", f"{call.method} is not supported on this resource by the fake")


def _empty_namespace(store: KubeStore, namespace: str) -> None:
    """What the namespace controller does before a deleted namespace goes: delete what is in it.
    (A real namespace shows as Terminating meanwhile; the fake does it all at once.)"""
    for rtype in list(store.types.values()):
        if rtype.namespaced:
            for obj in store.list(rtype, namespace, lambda labels: True)[0]:
                with contextlib.suppress(StoreError):  # deleted meanwhile by someone else
                    store.delete(rtype, (namespace, obj["metadata"]["name"]))


def _dry_run(call: Call) -> bool:
    """`dryRun=All` on a write: answer as if written, store nothing."""
    value = call.query.get("dryRun")
    if value in (None, ""):
        return False
    if value != "All" or call.method == "GET":
        raise StoreError(400, "BadRequest", f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return True


def admit(route: Route, obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server checks and fills in beyond `check_body` before storing: a CRD must be
    valid, and is stored Established (the fake installs it at once)."""
    if not is_crd(route.rtype):
        return obj
    try:
        served = crd_type(obj)
    except InvalidCrd as exc:
        raise StoreError(422, "Invalid", f'CustomResourceDefinition.apiextensions.k8s.io '
                         f'"{obj["metadata"].get("name")}" is invalid: {exc}') from exc
    names = (obj.get("spec") or {}).get("names") or {}
    accepted = {**names, "singular": names.get("singular") or served.kind.lower(),
                "listKind": names.get("listKind") or f"{served.kind}List"}
    conditions = [{"type": kind, "status": "True", "reason": reason, "message": message}
                  for kind, reason, message in (("NamesAccepted", "NoConflicts", "no conflicts found"),
                                                ("Established", "InitialNamesAccepted",
                                                 "the initial names have been accepted"))]
    storage = [v["name"] for v in obj["spec"]["versions"] if v.get("storage")]
    return {**obj, "status": {"acceptedNames": accepted, "conditions": conditions, "storedVersions": storage}}


def _served(crd: dict[str, Any]) -> tuple[str, str]:
    spec = crd.get("spec") or {}
    return (spec.get("group") or "", (spec.get("names") or {}).get("plural") or "")


def _installed(store: KubeStore, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """A stored CRD's kind is served from now on."""
    if not dry_run and obj.get("kind") == "CustomResourceDefinition" and \
            obj.get("apiVersion", "").startswith("apiextensions.k8s.io/"):
        store.add_type(crd_type(obj))
    return obj


def _patch(store: KubeStore, call: Call, dry_run: bool) -> dict[str, Any]:
    route = call.route

    def change(current: dict[str, Any]) -> dict[str, Any]:
        served = out(route, current)  # the patch applies to the object as served at this version
        patched = apply_patch(call.content_type, served, call.body, route.rtype)
        check_body(route, patched, route.name)
        patched = admit(route, patched)
        # Stored as it was created (at whichever version); served relabelled, as above.
        kept: dict[str, Any] = {k: current[k] for k in ("apiVersion", "kind") if k in current}
        return {**{k: v for k, v in patched.items() if k not in ("apiVersion", "kind")}, **kept}

    return store.patch(route.rtype, route.key, change, dry_run=dry_run)


def _apply(store: KubeStore, call: Call, dry_run: bool) -> tuple[bool, dict[str, Any]]:
    """Server-side apply (kube_apply): create or update, as the field manager's configuration says."""
    route = call.route
    check_body(route, call.body, route.name)
    force = call.query.get("force") in ("true", "1")

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        served = out(route, current) if current is not None else None
        applied = kube_apply.apply(served, call.body, route.rtype, manager=call.query.get("fieldManager", ""),
                                   force=force)
        applied = admit(route, {**applied, "apiVersion": route.api_version, "kind": route.rtype.kind})
        if current is None:
            return applied
        kept: dict[str, Any] = {k: current[k] for k in ("apiVersion", "kind") if k in current}
        return {**{k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}, **kept}

    return store.apply(route.rtype, route.key, change, dry_run=dry_run)


def check_body(route: Route, body: Any, name: str | None) -> tuple[str, str]:
    """Validate a create/replace body (or a patch's result) as the API server does; return its key."""
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        raise StoreError(400, "BadRequest", "the body must be an object with metadata")
    want = (route.api_version, route.rtype.kind)
    if (body.get("apiVersion"), body.get("kind")) != want:
        raise StoreError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) "
                         f"and kind ({body.get('kind')}) do not match {want[0]} {want[1]}")
    metadata = body["metadata"]
    if metadata.get("namespace") not in (None, route.namespace):
        raise StoreError(400, "BadRequest", "the namespace of the provided object does not match the "
                         "namespace sent on the request")
    if not metadata.get("name"):
        raise StoreError(422, "Invalid", f"{route.rtype.kind} is invalid: metadata.name: Required value")
    if name is not None and metadata["name"] != name:
        raise StoreError(400, "BadRequest", "the name of the object does not match the name on the URL")
    return (route.namespace or "", str(metadata["name"]))
