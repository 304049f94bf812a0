"""Follows `mesh-config` into an in-memory map of resources and its KV revision.

The watch itself is libs.bus's `DecodedKvMirror`: each entry is decoded once, as it
arrives, and an unreadable one (galley validates what it writes, so another writer's)
is logged and skipped, its key keeping its last good resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog

from libs.bus import DecodedKvMirror, KvBucket, parse_config_key
from libs.config import Resource
from services.pilot.model.config import ConfigSnapshot

log = structlog.get_logger(__name__)


def _read(key: str, value: bytes) -> Resource:
    parse_config_key(key)
    return Resource.from_json(value)


class ConfigWatcher:
    """Keeps the latest resources; calls `on_synced` once, then `on_change` per update."""

    def __init__(self, bucket: KvBucket, *, on_synced: Callable[[], None], on_change: Callable[[], None]) -> None:
        self._on_synced = on_synced
        self._on_change = on_change
        self._mirror = DecodedKvMirror(bucket, _read, on_change=self._mirrored)
        self._announced = False

    @property
    def revision(self) -> int:
        return self._mirror.revision

    @property
    def synced(self) -> bool:
        return self._mirror.synced

    def snapshot(self) -> ConfigSnapshot:
        return ConfigSnapshot(self.revision, dict(self._mirror.values))

    def _mirrored(self) -> None:
        # The mirror's first call is its initial sync; every later one is a change.
        if not self._announced:
            self._announced = True
            log.info("mesh-config loaded", resources=len(self._mirror.values), revision=self.revision)
            self._on_synced()
            return
        self._on_change()

    async def run(self) -> None:
        await self._mirror.run()


def describe(resources: dict[str, Resource]) -> list[dict[str, object]]:
    return [json.loads(r.to_json()) for r in resources.values()]
