"""Debounced pushes: wait for a quiet period, but never longer than a maximum."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Debouncer:
    """Call `fire()` once changes stop for `quiet_s`, or `max_s` after the first change.

    With `quiet_s == 0` every change fires at the next turn of the loop (tests use this).
    """

    def __init__(self, quiet_s: float, max_s: float, fire: Callable[[], None]) -> None:
        self.quiet_s = quiet_s
        self.max_s = max_s
        self._fire = fire
        self._changed = asyncio.Event()
        self._last_change = 0.0

    def trigger(self) -> None:
        self._last_change = time.monotonic()
        self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            first = time.monotonic()
            while True:
                self._changed.clear()
                now = time.monotonic()
                quiet_left = self._last_change + self.quiet_s - now
                max_left = first + self.max_s - now
                wait = min(quiet_left, max_left)
                if wait <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)
                except TimeoutError:
                    break
            self._changed.clear()
            self._fire()
