"""The send window: at most N streams build and write at once, and a stalled one cannot
keep its slot."""

from __future__ import annotations

import asyncio

from services.pilot.xds.send_window import SendWindow


async def test_only_as_many_streams_as_slots_hold_one() -> None:
    window = SendWindow(2)
    inside = 0
    most = 0
    release = asyncio.Event()
    full = asyncio.Event()

    async def stream() -> None:
        nonlocal inside, most
        async with window.slot():
            inside += 1
            most = max(most, inside)
            if inside == 2:
                full.set()
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(stream()) for _ in range(5)]
    await full.wait()
    # Let the other three try for their slots.
    for _ in range(10):
        await asyncio.sleep(0)
    assert inside == 2
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2


async def test_a_stalled_stream_gives_its_slot_back() -> None:
    window = SendWindow(1, stall_s=0.05)
    stalled = asyncio.Event()

    async def stall() -> None:
        async with window.slot():
            stalled.set()
            await asyncio.Event().wait()  # a proxy that never reads

    holder = asyncio.create_task(stall())
    await stalled.wait()
    try:
        async with asyncio.timeout(5):
            async with window.slot():
                pass
    finally:
        holder.cancel()
