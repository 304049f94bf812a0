from __future__ import annotations

import asyncio
import contextlib

from services.pilot.debounce import Debouncer


async def _run_with(debouncer: Debouncer) -> asyncio.Task[None]:
    return asyncio.create_task(debouncer.run())


async def test_burst_of_changes_fires_once_after_quiet() -> None:
    fired: list[float] = []
    first = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fire() -> None:
        fired.append(loop.time())
        first.set()

    debouncer = Debouncer(0.05, 10, fire)
    task = await _run_with(debouncer)
    for _ in range(5):
        debouncer.trigger()
        await asyncio.sleep(0.01)
    await asyncio.wait_for(first.wait(), timeout=5)
    # Longer than the quiet period: a second push would have fired by now.
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(fired) == 1


async def test_steady_stream_still_fires_at_the_maximum() -> None:
    fired = asyncio.Event()
    debouncer = Debouncer(0.05, 0.15, fired.set)
    task = await _run_with(debouncer)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not fired.is_set() and loop.time() - start < 2:
        debouncer.trigger()
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert fired.is_set()
    assert loop.time() - start < 1.0
