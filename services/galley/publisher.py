"""Makes `mesh-config` equal to what the sources hold: puts changes, deletes leftovers.

On start it reads the bucket, so keys left from an earlier run whose resources are gone
are deleted (no stale key survives a restart).  Galley is the only writer.
"""

from __future__ import annotations

import structlog

from libs.bus import KvBucket
from libs.config import Resource

log = structlog.get_logger(__name__)


class Publisher:
    def __init__(self, bucket: KvBucket) -> None:
        self._bucket = bucket
        self._published: dict[str, bytes] = {}
        self.revision = 0

    async def load(self) -> None:
        """Learn what the bucket holds now."""
        entries = await self._bucket.entries()
        self._published = {key: entry.value for key, entry in entries.items()}
        self.revision = max((e.revision for e in entries.values()), default=0)

    async def publish(self, desired: dict[str, Resource]) -> tuple[int, int]:
        """Write what changed; return (written, deleted)."""
        written = deleted = 0
        encoded = {key: resource.to_json() for key, resource in desired.items()}
        for key in sorted(encoded):
            if self._published.get(key) == encoded[key]:
                continue
            self.revision = await self._bucket.put(key, encoded[key])
            self._published[key] = encoded[key]
            written += 1
            log.info("published", key=key, revision=self.revision)
        for key in sorted(set(self._published) - encoded.keys()):
            await self._bucket.delete(key)
            del self._published[key]
            deleted += 1
            log.info("deleted", key=key)
        return written, deleted
