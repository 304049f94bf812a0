"""Follows `mesh-config` into an in-memory map of resources and its KV revision."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import structlog

from libs.bus import KvBucket, KvSynced, parse_config_key
from libs.config import Resource
from services.pilot.model.config import ConfigSnapshot

log = structlog.get_logger(__name__)


class ConfigWatcher:
    """Keeps the latest resources; calls `on_synced` once, then `on_change` per update."""

    def __init__(self, bucket: KvBucket, *, on_synced: Callable[[], None], on_change: Callable[[], None]) -> None:
        self._bucket = bucket
        self._on_synced = on_synced
        self._on_change = on_change
        self._resources: dict[str, Resource] = {}
        self.revision = 0
        self.synced = False

    def snapshot(self) -> ConfigSnapshot:
        return ConfigSnapshot(self.revision, dict(self._resources))

    def _apply(self, key: str, value: bytes | None, revision: int) -> None:
        self.revision = max(self.revision, revision)
        if value is None:
            self._resources.pop(key, None)
            return
        try:
            parse_config_key(key)
            resource = Resource.from_json(value)
        except (ValueError, KeyError, TypeError) as exc:
            # Galley validates what it writes; a bad entry means another writer. Keep the last good one.
            log.error("ignoring unreadable mesh-config entry", key=key, revision=revision, error=repr(exc))
            return
        self._resources[key] = resource

    async def run(self) -> None:
        async with contextlib.aclosing(self._bucket.watch()) as events:
            async for event in events:
                if isinstance(event, KvSynced):
                    if not self.synced:
                        self.synced = True
                        log.info("mesh-config loaded", resources=len(self._resources), revision=self.revision)
                        self._on_synced()
                    continue
                self._apply(event.key, event.value, event.revision)
                if self.synced:
                    self._on_change()


def describe(resources: dict[str, Resource]) -> list[dict[str, object]]:
    return [json.loads(r.to_json()) for r in resources.values()]
