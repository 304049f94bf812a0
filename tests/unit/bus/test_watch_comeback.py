"""A watch starts again when the connection comes back, and yields only what is new (pure
asyncio: stand-ins for nats-py's bucket and watcher, no server)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from nats.js.kv import KV_DEL

from libs.bus import KvEvent, KvSynced
from libs.bus._kv import KvBucket, Reconnects

_STOP = object()


class Watcher:
    """Hands out what the test puts in, as nats-py's watcher does; `stop()` ends it."""

    def __init__(self, *entries: Any) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        for entry in entries:
            self.queue.put_nowait(entry)
        self.stopped = False

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> Any:
        entry = await self.queue.get()
        if entry is _STOP:
            raise StopAsyncIteration
        return entry

    async def stop(self) -> None:
        self.stopped = True
        self.queue.put_nowait(_STOP)


class Bucket:
    """nats-py's KeyValue, as far as `KvBucket.watch` uses it: each watch() hands out the
    next watcher the test prepared."""

    def __init__(self, *watchers: Watcher, last_seq: int) -> None:
        self.watchers = list(watchers)
        self.last_seq = last_seq

    async def status(self) -> Any:
        return SimpleNamespace(values=1, stream_info=SimpleNamespace(state=SimpleNamespace(last_seq=self.last_seq)))

    async def watch(self, keys: str) -> Watcher:
        return self.watchers.pop(0)


def entry(key: str, value: bytes | None, revision: int, delta: int = 0) -> Any:
    return SimpleNamespace(key=key, value=value, revision=revision, delta=delta,
                           operation=KV_DEL if value is None else None)


async def test_a_comeback_starts_the_watch_again_and_only_new_revisions_are_yielded() -> None:
    first = Watcher(entry("a", b"1", 1))
    # What a new watch replays after the comeback: the last value of every key, then news.
    second = Watcher(entry("a", b"1", 1, delta=2), entry("b", b"2", 2, delta=1), entry("a", None, 3))
    reconnects = Reconnects()
    bucket = KvBucket("test", Bucket(first, second, last_seq=3), reconnects)  # type: ignore[arg-type]
    async with contextlib.aclosing(bucket.watch()) as events:
        assert [await anext(events), await anext(events)] == [KvEvent("a", b"1", 1), KvSynced(1)]
        reconnects.happened()
        after = [await asyncio.wait_for(anext(events), timeout=5) for _ in range(2)]
    assert after == [KvEvent("b", b"2", 2), KvEvent("a", None, 3)]
    assert first.stopped and bucket.resumes == 1


async def test_a_watcher_that_ends_of_itself_ends_the_watch() -> None:
    watcher = Watcher(entry("a", b"1", 1), _STOP)
    bucket = KvBucket("test", Bucket(watcher, last_seq=1), Reconnects())  # type: ignore[arg-type]
    seen = [event async for event in bucket.watch()]
    assert seen == [KvEvent("a", b"1", 1), KvSynced(1)] and bucket.resumes == 0


async def test_a_comeback_between_asking_and_awaiting_is_not_missed() -> None:
    reconnects = Reconnects()
    # The task has not run yet when the connection comes back.
    pending = asyncio.ensure_future(reconnects.next())
    reconnects.happened()
    assert await asyncio.wait_for(pending, timeout=5)
    assert not asyncio.ensure_future(reconnects.next()).done()
