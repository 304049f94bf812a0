"""JetStream KV helpers: put, get, delete, compare-and-set, and a watch.

`KvBucket.watch()` yields every current entry, then one `KvSynced` marking the end of
the initial state, then every later change, each with its KV revision (the stream
sequence of the write), so consumers can tell "loaded" from "loading" and version what
they build.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from libs.bus._errors import BusError, KeyNotFound

log = structlog.get_logger(__name__)
# How long a watch keeps trying to start again after the connection came back.
RESUME_PATIENCE_S = 30.0


@dataclass(frozen=True, slots=True)
class KvEntry:
    key: str
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class KvEvent:
    """A key was written (`value` set) or deleted (`value` is None) at `revision`."""

    key: str
    value: bytes | None
    revision: int

    @property
    def deleted(self) -> bool:
        return self.value is None


@dataclass(frozen=True, slots=True)
class KvSynced:
    """Every entry that existed when the watch started has been yielded."""

    revision: int


class Reconnects:
    """When the process's NATS connection comes back: what a watch waits on."""

    def __init__(self) -> None:
        self._back = asyncio.Event()

    def happened(self) -> None:
        self._back.set()
        self._back = asyncio.Event()

    def next(self) -> Coroutine[Any, Any, bool]:
        """What to await for the next comeback after this call (the event is taken now, not
        when a task first runs the coroutine, so a comeback in between is not missed)."""
        return self._back.wait()


async def _stop_on(comeback: asyncio.Future[bool], watcher: KeyValue.KeyWatcher) -> None:
    """Stop `watcher` once the connection comes back, which ends its iteration: the watch
    then starts again (see `KvBucket.watch`).  Costs nothing per entry."""
    await comeback
    with contextlib.suppress(nats.errors.Error, OSError):
        await watcher.stop()


class KvBucket:
    """One KV bucket.  NATS errors are wrapped in `BusError`."""

    def __init__(self, name: str, kv: KeyValue, reconnects: Reconnects | None = None) -> None:
        self.name = name
        self._kv = kv
        self._reconnects = reconnects or Reconnects()
        # Watches started again after the connection came back (see `watch`).
        self.resumes = 0

    async def put(self, key: str, value: bytes) -> int:
        """Write `key`; return the new revision."""
        try:
            return await self._kv.put(key, value)
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: put {key!r} failed: {exc!r}") from exc

    async def create(self, key: str, value: bytes) -> int | None:
        """Write `key` only if it does not exist; return its revision, or None if it did."""
        try:
            return await self._kv.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: create {key!r} failed: {exc!r}") from exc

    async def update(self, key: str, value: bytes, *, last_revision: int) -> int | None:
        """Write `key` only if its revision is still `last_revision`; None if it moved on."""
        try:
            return await self._kv.update(key, value, last=last_revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: update {key!r} failed: {exc!r}") from exc

    async def get(self, key: str) -> KvEntry:
        try:
            entry = await self._kv.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError) as exc:
            raise KeyNotFound(self.name, key) from exc
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: get {key!r} failed: {exc!r}") from exc
        if entry.revision is None:
            raise BusError(f"{self.name}: get {key!r} returned no revision")
        return KvEntry(key, entry.value or b"", entry.revision)

    async def delete(self, key: str) -> None:
        try:
            await self._kv.delete(key)
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: delete {key!r} failed: {exc!r}") from exc

    async def keys(self) -> list[str]:
        try:
            return await self._kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: listing keys failed: {exc!r}") from exc

    async def last_revision(self) -> int:
        """The revision of the bucket's latest write or delete (0 when empty)."""
        try:
            status = await self._kv.status()
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: status failed: {exc!r}") from exc
        return int(status.stream_info.state.last_seq or 0)

    async def size(self) -> int:
        """Entries held, delete markers included (cheap: no watch, one status call)."""
        try:
            status = await self._kv.status()
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: status failed: {exc!r}") from exc
        return int(status.values)

    async def entries(self) -> dict[str, KvEntry]:
        """Every live entry, read through one watch (consistent with `watch()`)."""
        found: dict[str, KvEntry] = {}
        async with contextlib.aclosing(self.watch()) as events:
            async for event in events:
                if isinstance(event, KvSynced):
                    break
                if event.value is None:
                    found.pop(event.key, None)
                else:
                    found[event.key] = KvEntry(event.key, event.value, event.revision)
        return found

    async def _stored(self, keys: str) -> int:
        """How many messages the bucket holds under `keys` (nats-py keeps the stream's name
        and subject prefix private; they are stable parts of the KV protocol)."""
        try:
            if keys == ">":
                return int((await self._kv.status()).values)
            info = await self._kv._js.stream_info(self._kv._stream, subjects_filter=f"{self._kv._pre}{keys}")
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"{self.name}: status failed: {exc!r}") from exc
        return sum((info.state.subjects or {}).values())

    async def watch(self, keys: str = ">") -> AsyncGenerator[KvEvent | KvSynced, None]:
        """Yield the current entries, then `KvSynced`, then every change, forever.

        nats-py may signal "nothing pending" before the first entry reaches the client
        (its consumer info can count a message already sent but not yet received): when the
        bucket held entries under `keys`, the sync comes with the entry after which nothing
        is pending instead.

        When the connection comes back after a drop, the watch starts again at once and
        yields only what is newer than what it already yielded: a restarted nats-server
        has forgotten the watch's consumer, and nats-py would notice only after two missed
        idle heartbeats (10 s), holding every change back that long."""
        stored = await self._stored(keys)
        last_revision = 0
        synced = False
        while True:
            comeback = asyncio.ensure_future(self._reconnects.next())
            stopper: asyncio.Future[None] | None = None
            try:
                watcher = await self._open_watch(keys, resuming=last_revision > 0 or synced)
                stopper = asyncio.ensure_future(_stop_on(comeback, watcher))
                if synced and await self._went_back(last_revision):
                    # Only a server that lost its storage numbers writes from 1 again.
                    log.error("the bucket's revisions went back: NATS lost its storage; replaying all of it",
                              bucket=self.name, had=last_revision)
                    last_revision = 0
                already = last_revision
                watched = 0
                try:
                    async for entry in watcher:
                        if entry is None:
                            if not synced and not (stored and watched == 0 and already == 0):
                                synced = True
                                yield KvSynced(last_revision)
                            continue
                        revision = entry.revision or 0
                        watched = max(watched, revision)
                        if revision > already:
                            last_revision = max(last_revision, revision)
                            if entry.operation in (KV_DEL, KV_PURGE):
                                yield KvEvent(entry.key, None, revision)
                            else:
                                yield KvEvent(entry.key, entry.value or b"", revision)
                        if not synced and entry.delta == 0:
                            synced = True
                            yield KvSynced(last_revision)
                finally:
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await watcher.stop()
            finally:
                comeback.cancel()
                if stopper is not None:
                    stopper.cancel()
            if not comeback.done() or comeback.cancelled():
                return  # the watcher ended of itself
            self.resumes += 1
            log.info("nats is back: watching again", bucket=self.name, keys=keys, after_revision=last_revision)

    async def _went_back(self, revision: int) -> bool:
        try:
            return await self.last_revision() < revision
        except BusError:
            return False

    async def _open_watch(self, keys: str, *, resuming: bool) -> KeyValue.KeyWatcher:
        """A nats-py watch; when resuming, retried for a while (JetStream may still be
        starting on a server that has just come back)."""
        delay = 0.05
        waited = 0.0
        while True:
            try:
                return await self._kv.watch(keys)
            except (nats.errors.Error, OSError) as exc:
                if not resuming or waited >= RESUME_PATIENCE_S:
                    raise BusError(f"{self.name}: watch failed: {exc!r}") from exc
                log.warning("watching again failed; retrying", bucket=self.name, error=repr(exc))
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)
