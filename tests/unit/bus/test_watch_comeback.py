"""A watch's wait for its next entry gives way to the connection coming back (pure asyncio:
a stand-in for nats-py's watcher, no server)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from libs.bus._kv import Reconnects, _until


class Watcher:
    """Entries put in by the test, one at a time, as nats-py's watcher hands them out."""

    def __init__(self) -> None:
        self.entries: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> Any:
        return await self.entries.get()


async def test_a_comeback_while_waiting_for_an_entry_ends_the_entries_cleanly() -> None:
    reconnects = Reconnects()
    watcher = Watcher()
    comeback = asyncio.ensure_future(reconnects.wait())
    seen: list[Any] = []

    async def follow() -> None:
        async with contextlib.aclosing(_until(watcher, comeback)) as entries:  # type: ignore[arg-type]
            async for entry in entries:
                seen.append(entry)

    following = asyncio.ensure_future(follow())
    watcher.entries.put_nowait("first")
    while not seen:
        await asyncio.sleep(0)
    # Nothing pending now: the wait for the next entry is what the comeback interrupts.
    reconnects.happened()
    await asyncio.wait_for(following, timeout=5)
    assert seen == ["first"] and reconnects.count == 1
    # An entry that arrives later is left for the watch that starts again.
    watcher.entries.put_nowait("later")
    assert watcher.entries.qsize() == 1


async def test_a_waiter_started_before_a_comeback_is_woken_by_it_and_the_next_waits_again() -> None:
    reconnects = Reconnects()
    before = asyncio.ensure_future(reconnects.wait())
    await asyncio.sleep(0)
    reconnects.happened()
    await asyncio.wait_for(before, timeout=5)
    after = asyncio.ensure_future(reconnects.wait())
    await asyncio.sleep(0)
    assert not after.done()
    after.cancel()
