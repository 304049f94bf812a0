"""libs.bus against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from libs.bus import (
    Bus,
    BusError,
    BusSettings,
    BusUnavailable,
    DecodedKvMirror,
    KeyNotFound,
    KvEvent,
    KvMirror,
    KvSynced,
)
from tests.harness.nats import NatsServer, start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup

T = TypeVar("T")

pytestmark = pytest.mark.integration


async def test_kv_put_get_delete_and_revisions(nats: NatsServer) -> None:
    bus = await Bus.connect(BusSettings(url=nats.url), name="test")
    try:
        kv = await bus.kv("test-bucket")
        first = await kv.put("VirtualService.default.a", b"one")
        second = await kv.put("VirtualService.default.b", b"two")
        assert second > first
        entry = await kv.get("VirtualService.default.a")
        assert (entry.value, entry.revision) == (b"one", first)
        await kv.delete("VirtualService.default.a")
        with pytest.raises(KeyNotFound):
            await kv.get("VirtualService.default.a")
        assert set(await kv.keys()) == {"VirtualService.default.b"}
        # Compare-and-set, the basis of galley's leader lease.
        assert await kv.create("lease", b"x") is not None
        assert await kv.create("lease", b"y") is None
        current = await kv.get("lease")
        assert await kv.update("lease", b"z", last_revision=current.revision) is not None
        assert await kv.update("lease", b"w", last_revision=current.revision) is None
    finally:
        await bus.close()


async def test_watch_yields_initial_state_then_synced_then_updates(nats: NatsServer) -> None:
    bus = await Bus.connect(BusSettings(url=nats.url), name="test")
    try:
        kv = await bus.kv("watched")
        r1 = await kv.put("a", b"1")
        r2 = await kv.put("b", b"2")
        await kv.delete("b")
        seen: list[KvEvent | KvSynced] = []
        async with contextlib.aclosing(kv.watch()) as events:
            async for event in events:
                seen.append(event)
                if isinstance(event, KvSynced):
                    r3 = await kv.put("c", b"3")
                    await kv.delete("a")
                if len(seen) == 5:
                    break
        initial = seen[: seen.index(next(e for e in seen if isinstance(e, KvSynced)))]
        assert KvEvent("a", b"1", r1) in initial
        assert any(e.key == "b" and e.deleted and e.revision > r2 for e in initial)
        synced = next(e for e in seen if isinstance(e, KvSynced))
        assert synced.revision == max(e.revision for e in initial)
        updates = seen[seen.index(synced) + 1:]
        assert updates[0] == KvEvent("c", b"3", r3)
        assert updates[1].key == "a" and updates[1].deleted
    finally:
        await bus.close()


async def test_watch_of_empty_bucket_is_synced_at_once(nats: NatsServer) -> None:
    bus = await Bus.connect(BusSettings(url=nats.url), name="test")
    try:
        kv = await bus.kv("empty")
        async with contextlib.aclosing(kv.watch()) as events:
            assert await anext(events) == KvSynced(0)
    finally:
        await bus.close()


async def test_decoded_mirror_keeps_the_last_readable_value(nats: NatsServer) -> None:
    """What pilot's mesh-config watch relies on: one callback for the initial state, one per
    change after it, and a value that cannot be read leaves its key's last good one."""
    bus = await Bus.connect(BusSettings(url=nats.url), name="test")
    try:
        kv = await bus.kv("decoded")
        await kv.put("a", b"1")
        seen: asyncio.Queue[dict[str, int]] = asyncio.Queue()
        mirror = DecodedKvMirror(kv, lambda _key, value: int(value),
                                 on_change=lambda: seen.put_nowait(dict(mirror.values)))
        task = asyncio.create_task(mirror.run(), name="mirror")
        try:
            assert await asyncio.wait_for(seen.get(), 10) == {"a": 1}
            assert mirror.synced
            await kv.put("a", b"not a number")
            assert await asyncio.wait_for(seen.get(), 10) == {"a": 1}
            await kv.put("b", b"2")
            assert await asyncio.wait_for(seen.get(), 10) == {"a": 1, "b": 2}
            await kv.delete("a")
            assert await asyncio.wait_for(seen.get(), 10) == {"b": 2}
            assert mirror.revision == await kv.last_revision()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await bus.close()


async def test_a_changes_only_mirror_ignores_rewrites_of_the_same_bytes(nats: NatsServer) -> None:
    bus = await Bus.connect(BusSettings(url=nats.url), name="test")
    try:
        kv = await bus.kv("refreshed")
        await kv.put("agent-a", b"registration")
        seen: asyncio.Queue[dict[str, bytes]] = asyncio.Queue()
        mirror = KvMirror(kv, on_change=lambda: seen.put_nowait(dict(mirror.values)), changes_only=True)
        task = asyncio.create_task(mirror.run(), name="mirror")
        try:
            assert await asyncio.wait_for(seen.get(), 10) == {"agent-a": b"registration"}
            # A refresh of the same entry, then a real change: only the change is seen.
            await kv.put("agent-a", b"registration")
            last = await kv.put("agent-a", b"moved")
            assert await asyncio.wait_for(seen.get(), 10) == {"agent-a": b"moved"}
            assert seen.empty() and mirror.revision == last
            await kv.delete("agent-a")
            assert await asyncio.wait_for(seen.get(), 10) == {}
            await kv.put("agent-a", b"moved")
            assert await asyncio.wait_for(seen.get(), 10) == {"agent-a": b"moved"}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await bus.close()


async def test_unreachable_nats_is_a_clear_error() -> None:
    with pytest.raises(BusUnavailable, match="cannot connect to NATS"):
        await Bus.connect(BusSettings(url=f"nats://127.0.0.1:{free_port()}", connect_timeout_s=1), name="test")


async def _retried(call: Callable[[], Awaitable[T]]) -> T:
    """`call()` once the restarted server's JetStream answers (readiness, not a pause)."""
    for _ in range(200):
        try:
            return await call()
        except BusError:
            await asyncio.sleep(0.05)
    return await call()


async def test_a_watch_resumes_when_nats_is_back_and_yields_only_what_is_new(
        processes: ProcessGroup, nats: NatsServer) -> None:
    """A restarted nats-server has forgotten the watch's consumer: the watch starts again
    on the reconnect itself, and what it had yielded before is not yielded twice."""
    watching = await Bus.connect(BusSettings(url=nats.url), name="watcher")
    writing = await Bus.connect(BusSettings(url=nats.url), name="writer")
    try:
        kv, writer = await watching.kv("resumed"), await writing.kv("resumed")
        first = await writer.put("a", b"1")
        async with contextlib.aclosing(kv.watch()) as events:
            assert [await anext(events), await anext(events)] == [KvEvent("a", b"1", first), KvSynced(first)]
            nats.process.kill()
            nats.process = start_nats(processes, nats.store_dir, port=nats.port, name="nats-again").process
            second = await _retried(lambda: writer.put("b", b"2"))
            await writer.delete("a")
            after = [await asyncio.wait_for(anext(events), timeout=30) for _ in range(2)]
        assert after[0] == KvEvent("b", b"2", second)
        assert after[1].key == "a" and after[1].deleted and after[1].revision > second
        assert kv.resumes == 1
    finally:
        await watching.close()
        await writing.close()
