"""Following an informer from a test, and polling for conditions on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from libs.kube import Synced, WatchEvent

Item = WatchEvent | Synced


async def eventually(check: Callable[[], Any], *, within_s: float = 5.0, what: str = "condition") -> Any:
    """Poll `check` on the loop (so informers keep running) until it returns a truthy value."""
    deadline = time.monotonic() + within_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(0.01)
    return result


class Follower:
    """Runs an informer in a task and queues what it yields; cancelled (and its watch closed) on exit."""

    def __init__(self, events: AsyncGenerator[Item, None]) -> None:
        self._events = events
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with contextlib.aclosing(self._events) as events:
            async for item in events:
                self.queue.put_nowait(item)

    async def __aenter__(self) -> Follower:
        self._task = asyncio.create_task(self._run(), name="test informer")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def next(self, within_s: float = 5.0) -> Item:
        try:
            return await asyncio.wait_for(self.queue.get(), within_s)
        except TimeoutError:
            raise AssertionError(f"no event from the informer within {within_s}s") from None

    async def until_synced(self) -> tuple[list[WatchEvent], Synced]:
        """Everything up to the next Synced marker, and the marker."""
        events: list[WatchEvent] = []
        while not isinstance(item := await self.next(), Synced):
            events.append(item)
        return events, item

    async def until_named(self, name: str) -> list[Item]:
        """Everything up to and including the first event for object `name`."""
        items: list[Item] = []
        while True:
            items.append(item := await self.next())
            if isinstance(item, WatchEvent) and item.name == name:
                return items
