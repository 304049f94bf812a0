"""How many streams may build and write responses at once.

When a thousand proxies connect or a push wakes them all, each stream would otherwise
build its responses (a megabyte for a sidecar seeing a thousand services) before the
first is written, and pilot would hold them all at once.  A stream takes a slot before it
builds and gives it back once its responses are written.  A proxy that stops reading
cannot keep a slot: after `stall_s` the slot goes back anyway (its responses stay queued
for it, the window just stops counting them).
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class SendWindow:
    def __init__(self, slots: int, *, stall_s: float = 5.0) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._stall_s = stall_s

    def slot(self) -> _Slot:
        return _Slot(self._slots, self._stall_s)


class _Slot:
    def __init__(self, slots: asyncio.Semaphore, stall_s: float) -> None:
        self._slots = slots
        self._stall_s = stall_s
        self._held = False
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> _Slot:
        await self._slots.acquire()
        self._held = True
        self._timer = asyncio.get_running_loop().call_later(self._stall_s, self._release)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._release()

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            self._held = False
            self._slots.release()
