"""What an informer yields, and the pure steps of the list-then-watch protocol.

A watch stream is newline-delimited JSON, one `{"type": ..., "object": ...}` per line:
ADDED / MODIFIED / DELETED carry the object; BOOKMARK carries only a newer
`metadata.resourceVersion` to resume from; ERROR carries a `Status` (410 when the requested
resourceVersion has left the server's history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from libs.kube._errors import KubeError, status_error

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
ObjectKey = tuple[str, str]


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    """(namespace, name); the namespace is "" for cluster-scoped objects."""
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def resource_version_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """An object was added, modified or deleted (`object` is its last state when deleted)."""

    type: EventType
    object: dict[str, Any]

    @property
    def key(self) -> ObjectKey:
        return object_key(self.object)

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[1]

    @property
    def resource_version(self) -> str:
        return resource_version_of(self.object)


@dataclass(frozen=True, slots=True)
class Synced:
    """Every object that existed at `resource_version` has been yielded: after the first list
    (`initial`) and again after each relist, once the relist's changes have been yielded."""

    resource_version: str
    initial: bool


@dataclass(frozen=True, slots=True)
class Bookmark:
    """The server's promise that nothing this watch selects changed up to `resource_version`."""

    resource_version: str


def decode_event(line: Mapping[str, Any], action: str) -> WatchEvent | Bookmark:
    """One decoded watch line; an ERROR event is raised as the error its Status stands for."""
    kind = line.get("type")
    obj = line.get("object")
    if kind == "ERROR":
        raise status_error(action, obj)
    if not isinstance(obj, dict):
        raise KubeError(f"{action}: watch event {kind!r} without an object")
    if kind == "BOOKMARK":
        return Bookmark(resource_version_of(obj))
    if kind in ("ADDED", "MODIFIED", "DELETED"):
        return WatchEvent(kind, obj)
    raise KubeError(f"{action}: unknown watch event type {kind!r}")


def relist_diff(known: Mapping[ObjectKey, Mapping[str, Any]], listed: list[dict[str, Any]]) -> list[WatchEvent]:
    """The events that turn what a consumer was told (`known`) into what a fresh list holds.

    Used after a 410 Gone: the watch history between the two is lost, so the difference of the
    two states is all there is to report.  A changed resourceVersion means the object changed;
    a key missing from the list was deleted (reported with its last known state)."""
    events: list[WatchEvent] = []
    seen: set[ObjectKey] = set()
    for obj in listed:
        key = object_key(obj)
        seen.add(key)
        previous = known.get(key)
        if previous is None:
            events.append(WatchEvent("ADDED", obj))
        elif resource_version_of(previous) != resource_version_of(obj):
            events.append(WatchEvent("MODIFIED", obj))
    for key, previous in known.items():
        if key not in seen:
            events.append(WatchEvent("DELETED", dict(previous)))
    return events
