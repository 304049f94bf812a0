"""Makes `mesh-config` equal to what the sources hold: puts changes, deletes leftovers.

On start it reads the bucket, so keys left from an earlier run whose resources are gone
are deleted (no stale key survives a restart).  Galley is the only writer.
"""

from __future__ import annotations

import asyncio

import structlog

from libs.bus import KvBucket
from libs.config import Resource

log = structlog.get_logger(__name__)

# KV writes in flight at once.
BATCH = 256


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
        """Write what changed; return (written, deleted).

        Writes go out in pipelined batches: each KV put is a JetStream round trip, and
        waiting for each in turn would make a 10,000-resource sync take seconds.
        """
        changed = [(key, resource.to_json()) for key, resource in sorted(desired.items())
                   if self._published.get(key) != resource.to_json()]
        removed = sorted(set(self._published) - desired.keys())
        for start in range(0, len(changed), BATCH):
            batch = changed[start:start + BATCH]
            revisions = await asyncio.gather(*(self._bucket.put(key, value) for key, value in batch))
            self.revision = max(self.revision, *revisions)
            for key, value in batch:
                self._published[key] = value
                log.debug("published", key=key)
        for start in range(0, len(removed), BATCH):
            gone = removed[start:start + BATCH]
            await asyncio.gather(*(self._bucket.delete(key) for key in gone))
            for key in gone:
                del self._published[key]
                log.debug("deleted", key=key)
        if changed or removed:
            log.info("mesh-config updated", written=len(changed), deleted=len(removed), revision=self.revision,
                     keys=[key for key, _ in changed[:5]] + removed[:5])
        return len(changed), len(removed)
