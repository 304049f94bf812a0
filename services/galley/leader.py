"""Leader election over a NATS KV lease: one galley replica writes mesh-config.

The leader renews the lease (a compare-and-set on its last revision) every `renew_s`.
A follower that sees the lease's revision unchanged for `ttl_s` takes it over with a
compare-and-set on that revision, so of several followers exactly one wins.  A leader
whose renewal fails has lost the lease and stops writing at once.  A replica restarted
under the same name (`--replica-id`; the local mesh's galley, a pod's container) takes
its own lease back at once instead of waiting for it to expire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import structlog

from libs.bus import BusError, KeyNotFound, KvBucket

log = structlog.get_logger(__name__)

LEASE_KEY = "galley"


class Lease:
    def __init__(self, bucket: KvBucket, holder: str, *, ttl_s: float = 3.0, renew_s: float = 0.5) -> None:
        if renew_s >= ttl_s:
            raise ValueError("the lease must be renewed more often than it expires")
        self._bucket = bucket
        self.holder = holder
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self._revision: int | None = None
        self._observed: tuple[int, float] | None = None
        self.leader = False

    def _value(self) -> bytes:
        return json.dumps({"holder": self.holder, "renewed": time.time()}).encode()

    async def _try_acquire(self) -> bool:
        try:
            entry = await self._bucket.get(LEASE_KEY)
        except KeyNotFound:
            self._revision = await self._bucket.create(LEASE_KEY, self._value())
            return self._revision is not None
        if _holder(entry.value) == self.holder:
            # An earlier run of this replica (a replica's name is its own, as a pod's is):
            # it is gone, and waiting out its lease would hold every write back `ttl_s`.
            # Should it still be running, its next renewal fails and it stops writing.
            log.info("the lease is this replica's from an earlier run; taking it back", holder=self.holder)
            self._revision = await self._bucket.update(LEASE_KEY, self._value(), last_revision=entry.revision)
            return self._revision is not None
        now = time.monotonic()
        if self._observed is None or self._observed[0] != entry.revision:
            self._observed = (entry.revision, now)
            return False
        if now - self._observed[1] < self.ttl_s:
            return False
        log.info("lease expired; taking over", previous=_holder(entry.value))
        self._revision = await self._bucket.update(LEASE_KEY, self._value(), last_revision=entry.revision)
        return self._revision is not None

    async def _renew(self) -> bool:
        assert self._revision is not None
        self._revision = await self._bucket.update(LEASE_KEY, self._value(), last_revision=self._revision)
        return self._revision is not None

    async def run(self, on_elected: Callable[[], Awaitable[None]], on_lost: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                if self.leader:
                    if not await self._renew():
                        self.leader = False
                        log.warning("lease lost", holder=self.holder)
                        await on_lost()
                elif await self._try_acquire():
                    self.leader = True
                    log.info("elected leader", holder=self.holder)
                    await on_elected()
            except BusError as exc:
                if self.leader:
                    # Cannot prove we still hold the lease: stop writing.
                    self.leader = False
                    log.warning("lease renewal failed; stepping down", error=str(exc))
                    await on_lost()
                else:
                    log.warning("lease check failed", error=str(exc))
            await asyncio.sleep(self.renew_s)

    async def release(self) -> None:
        """On a clean stop, hand over at once instead of after `ttl_s`."""
        if self.leader and self._revision is not None:
            self.leader = False
            try:
                await self._bucket.delete(LEASE_KEY)
            except BusError as exc:
                log.warning("could not release the lease", error=str(exc))


def _holder(value: bytes) -> str | None:
    try:
        holder = json.loads(value).get("holder")
    except (ValueError, AttributeError):
        return None
    return holder if isinstance(holder, str) else None
