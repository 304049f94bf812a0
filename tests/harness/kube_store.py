"""The fake API server's storage: objects, one resourceVersion counter, a bounded event
history, and the open watches, all behind one lock (handlers run in threads).

As in etcd, the resourceVersion is one counter shared by every type, and every write (a
delete included) takes the next value.  A dry run (`dry_run=True`, the API's `dryRun=All`)
computes and answers the write without storing it, taking no resourceVersion and sending no
event.  A watch from resourceVersion R replays the history
after R and then follows live writes; if events after R have left the bounded history, it
gets an ERROR event with a 410 Status, exactly as the real API server answers.
"""

from __future__ import annotations

import copy
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.harness.kube_resources import FieldSelector, ResourceType, Selector

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
CLOSE = "close"  # end the stream cleanly (the terminating chunk)
ABORT = "abort"  # cut the connection mid-stream


class StoreError(Exception):
    """A failure the API server reports as a Status with this HTTP code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": message, "reason": reason, "code": code}
    return answer if details is None else {**answer, "details": details}


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def every_object(obj: Mapping[str, Any]) -> bool:
    """The empty field selector."""
    return True


@dataclass(eq=False)
class Watcher:
    rtype: ResourceType
    version: str
    namespace: str | None
    selector: Selector
    bookmarks: bool
    items: queue.SimpleQueue[tuple[str, dict[str, Any]] | str] = field(default_factory=queue.SimpleQueue)
    fields: FieldSelector = every_object

    def selects(self, obj: dict[str, Any]) -> bool:
        return self.selector(labels_of(obj)) and self.fields(obj)


@dataclass(frozen=True)
class _Change:
    rv: int
    rtype: ResourceType
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class KubeStore:
    def __init__(self, types: list[ResourceType], *, history_limit: int = 1000) -> None:
        self.types = {t.group_resource: t for t in types}
        self._lock = threading.Condition()
        self._rv = 1
        self._objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {gr: {} for gr in self.types}
        self._history: deque[_Change] = deque()
        self._history_limit = history_limit
        self._compacted = 0  # a watch from below this resourceVersion gets 410 Gone
        self._watchers: list[Watcher] = []
        self._held = False
        self._stopped = False

    def add_type(self, rtype: ResourceType) -> None:
        """Start serving `rtype` (a CRD being installed)."""
        with self._lock:
            self.types[rtype.group_resource] = rtype
            self._objects.setdefault(rtype.group_resource, {})

    def remove_type(self, group_resource: tuple[str, str]) -> None:
        """Stop serving a type, its objects gone with it (a CRD being deleted)."""
        with self._lock:
            self.types.pop(group_resource, None)
            self._objects.pop(group_resource, None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rtype = self.types.get((group, plural))
        return rtype if rtype is not None and version in rtype.versions else None

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    # -- reads ---------------------------------------------------------------------------

    def list(self, rtype: ResourceType, namespace: str | None, selector: Selector,
             fields: FieldSelector = every_object) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            items = [obj for (ns, _), obj in sorted(self._objects[rtype.group_resource].items())
                     if (namespace is None or ns == namespace) and selector(labels_of(obj)) and fields(obj)]
            return items, self._rv

    def get(self, rtype: ResourceType, key: Key) -> dict[str, Any]:
        with self._lock:
            obj = self._objects[rtype.group_resource].get(key)
        if obj is None:
            raise StoreError(404, "NotFound", f'{rtype.group_resource_name} "{key[1]}" not found')
        return obj

    # -- writes: each takes the next resourceVersion and is dispatched to the watches -------

    def create(self, rtype: ResourceType, key: Key, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        with self._lock:
            if key in self._objects[rtype.group_resource]:
                raise StoreError(409, "AlreadyExists", f'{rtype.group_resource_name} "{key[1]}" already exists')
            metadata = {**obj.get("metadata", {}), "uid": str(uuid.uuid4()), "generation": 1,
                        "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            return self._write(rtype, key, "ADDED", {**obj, "metadata": metadata}, None, dry_run)

    def replace(self, rtype: ResourceType, key: Key, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        with self._lock:
            old = self.get(rtype, key)
            sent_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise StoreError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.group_resource_name} '
                                 f'"{key[1]}": the object has been modified; please apply your changes to the '
                                 "latest version and try again")
            kept = {k: old["metadata"][k] for k in ("uid", "creationTimestamp", "generation")}
            if obj.get("spec") != old.get("spec"):
                kept["generation"] += 1
            return self._write(rtype, key, "MODIFIED", {**obj, "metadata": {**obj["metadata"], **kept}}, old,
                               dry_run)

    def patch(self, rtype: ResourceType, key: Key, change: Callable[[dict[str, Any]], dict[str, Any]], *,
              dry_run: bool = False) -> dict[str, Any]:
        """Read, change (a copy) and replace, atomically; as the API server does, a change that
        changes nothing writes nothing (the resourceVersion stays)."""
        with self._lock:
            old = self.get(rtype, key)
            new = change(copy.deepcopy(old))
            if new == old:
                return old
            return self.replace(rtype, key, new, dry_run=dry_run)

    def apply(self, rtype: ResourceType, key: Key, change: Callable[[dict[str, Any] | None], dict[str, Any]], *,
              dry_run: bool = False) -> tuple[bool, dict[str, Any]]:
        """Server-side apply's create-or-update, atomically: `change` gets the current object (a
        copy) or None; True with the object if it was created."""
        with self._lock:
            old = self._objects[rtype.group_resource].get(key)
            new = change(copy.deepcopy(old) if old is not None else None)
            if old is None:
                return True, self.create(rtype, key, new, dry_run=dry_run)
            if new == old:
                return False, old
            return False, self.replace(rtype, key, new, dry_run=dry_run)

    def delete(self, rtype: ResourceType, key: Key, preconditions: Mapping[str, str] | None = None, *,
               dry_run: bool = False) -> dict[str, Any]:
        with self._lock:
            old = self.get(rtype, key)
            for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted, actual = (preconditions or {}).get(field_name), old["metadata"].get(field_name)
                if wanted and wanted != actual:
                    raise StoreError(409, "Conflict", f"Precondition failed: {label} in precondition: {wanted}, "
                                     f"{label} in object meta: {actual}")
            return self._write(rtype, key, "DELETED", dict(old), old, dry_run)

    def _write(self, rtype: ResourceType, key: Key, kind: str, obj: dict[str, Any],
               old: dict[str, Any] | None, dry_run: bool = False) -> dict[str, Any]:
        if dry_run:
            # What the write would store, at the resourceVersion it has now (none if new).
            metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
            metadata["name"] = key[1]
            if rtype.namespaced:
                metadata["namespace"] = key[0]
            if old is not None:
                metadata["resourceVersion"] = old["metadata"]["resourceVersion"]
            return {**obj, "metadata": metadata}
        self._rv += 1
        obj["metadata"] = {**obj["metadata"], "name": key[1], "resourceVersion": str(self._rv)}
        if rtype.namespaced:
            obj["metadata"]["namespace"] = key[0]
        if kind == "DELETED":
            del self._objects[rtype.group_resource][key]
        else:
            self._objects[rtype.group_resource][key] = obj
        change = _Change(self._rv, rtype, kind, obj, old)
        self._history.append(change)
        while len(self._history) > self._history_limit:
            self._compacted = self._history.popleft().rv
        for watcher in self._watchers:
            self._deliver(watcher, change)
        return obj

    # -- watches -------------------------------------------------------------------------

    def _deliver(self, watcher: Watcher, change: _Change) -> None:
        if watcher.rtype.group_resource != change.rtype.group_resource:
            return
        if watcher.namespace is not None and change.obj["metadata"].get("namespace") != watcher.namespace:
            return
        now = watcher.selects(change.obj)
        before = change.old is not None and watcher.selects(change.old)
        kind = change.type
        if kind == "MODIFIED" and now != before:
            # Moving into or out of the selector is an ADDED or DELETED for this watch.
            kind = "ADDED" if now else "DELETED"
        elif not now:
            return
        watcher.items.put((kind, change.obj))

    def wait_released(self) -> bool:
        """Block while watches are held; False once the server is stopping."""
        with self._lock:
            self._lock.wait_for(lambda: not self._held or self._stopped)
            return not self._stopped

    def start_watch(self, watcher: Watcher, resource_version: int | None) -> None:
        """Register `watcher` and queue what it missed since `resource_version` (None: all
        current objects as ADDED), or a 410 if that history is gone."""
        with self._lock:
            if resource_version is not None and resource_version < self._compacted:
                watcher.items.put(("ERROR", status(
                    410, "Expired", f"too old resource version: {resource_version} ({self._compacted})")))
                watcher.items.put(CLOSE)
                return
            if resource_version is None:
                items, _ = self.list(watcher.rtype, watcher.namespace, watcher.selector, watcher.fields)
                for obj in items:
                    watcher.items.put(("ADDED", obj))
            else:
                for change in self._history:
                    if change.rv > resource_version:
                        self._deliver(watcher, change)
            self._watchers.append(watcher)

    def stop_watch(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def open_watches(self, plural: str | None = None) -> int:
        with self._lock:
            return sum(1 for w in self._watchers if plural is None or w.rtype.plural == plural)

    # -- test controls ---------------------------------------------------------------------

    def expire_history(self) -> int:
        """Forget every past event: any watch from before now gets 410 Gone."""
        with self._lock:
            self._history.clear()
            self._compacted = self._rv
            return self._rv

    def close_watches(self, *, abrupt: bool = False) -> int:
        with self._lock:
            closing, self._watchers = self._watchers, []
            for watcher in closing:
                watcher.items.put(ABORT if abrupt else CLOSE)
            return len(closing)

    def hold(self, *, abrupt: bool = False) -> None:
        """Close every open watch and keep new ones waiting (no events) until `release()`."""
        with self._lock:
            self._held = True
            self.close_watches(abrupt=abrupt)

    def release(self) -> None:
        with self._lock:
            self._held = False
            self._lock.notify_all()

    def send_bookmark(self) -> int:
        """A BOOKMARK at the current resourceVersion to every watch that allows bookmarks."""
        with self._lock:
            sent = 0
            for watcher in self._watchers:
                if watcher.bookmarks:
                    watcher.items.put(("BOOKMARK", {"kind": watcher.rtype.kind,
                                                    "metadata": {"resourceVersion": str(self._rv)}}))
                    sent += 1
            return sent

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self.close_watches(abrupt=True)
            self._lock.notify_all()
