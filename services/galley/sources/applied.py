"""Resources applied through galley's API (`mizzenctl apply`), kept in NATS.

The KV bucket `mesh-config-applied` is this source's store, so whichever galley replica
took the request, every replica (and the next leader) sees the same applied set, and a
restart loses nothing.  Its keys use the `mesh-config` scheme; values are `Resource`
JSON that galley validated before writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import structlog

from libs.bus import KvBucket, KvSynced
from libs.config import Origin, Resource

log = structlog.get_logger(__name__)

MESH_CONFIG_APPLIED = "mesh-config-applied"


class AppliedSource:
    def __init__(self, bucket: KvBucket, *, on_change: Callable[[], None] = lambda: None) -> None:
        self.name = "api"
        self._bucket = bucket
        self._on_change = on_change
        self._resources: dict[str, tuple[Origin, Resource]] = {}
        self._synced = False

    @property
    def synced(self) -> bool:
        return self._synced

    def resources(self) -> dict[str, tuple[Origin, Resource]]:
        return dict(self._resources)

    def get(self, key: str) -> Resource | None:
        entry = self._resources.get(key)
        return entry[1] if entry else None

    async def apply(self, resource: Resource) -> str:
        """Store `resource`; returns created, configured or unchanged (kubectl's words)."""
        current = self.get(resource.key)
        if current is not None and current.to_json() == resource.to_json():
            return "unchanged"
        await self._bucket.put(resource.key, resource.to_json())
        return "configured" if current is not None else "created"

    async def delete(self, key: str) -> bool:
        if key not in self._resources:
            return False
        await self._bucket.delete(key)
        return True

    async def run(self) -> None:
        async with contextlib.aclosing(self._bucket.watch()) as events:
            async for event in events:
                if isinstance(event, KvSynced):
                    self._synced = True
                    self._on_change()
                    continue
                if event.value is None:
                    self._resources.pop(event.key, None)
                else:
                    try:
                        resource = Resource.from_json(event.value)
                    except (ValueError, KeyError, TypeError) as exc:
                        log.error("ignoring unreadable applied resource", key=event.key, error=repr(exc))
                        continue
                    self._resources[event.key] = (Origin(f"api:{resource.ref}"), resource)
                if self._synced:
                    self._on_change()
