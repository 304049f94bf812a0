from __future__ import annotations

import asyncio

import pytest

from libs.runtime import Backoff, FatalServiceError, Supervisor


async def test_fatal_task_stops_the_service_and_is_raised() -> None:
    supervisor = Supervisor("test", grace_s=1)
    other_cancelled = asyncio.Event()

    async def boom() -> None:
        raise RuntimeError("broken")

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            other_cancelled.set()

    supervisor.start("forever", forever)
    supervisor.start("boom", boom)
    with pytest.raises(FatalServiceError, match="boom"):
        await supervisor.wait()
    assert other_cancelled.is_set()


async def test_restart_policy_retries_until_success() -> None:
    supervisor = Supervisor("test", grace_s=1)
    attempts = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("not yet")
        done.set()

    supervisor.start("flaky", flaky, restart=Backoff(initial_s=0, maximum_s=0))
    await asyncio.wait_for(done.wait(), timeout=5)
    supervisor.request_stop("test over")
    await supervisor.wait()
    assert attempts == 3


async def test_stop_callbacks_run_newest_first_before_cancellation() -> None:
    supervisor = Supervisor("test", grace_s=1)
    order: list[str] = []

    async def first() -> None:
        order.append("first")

    async def second() -> None:
        order.append("second")

    supervisor.on_stop("first", first)
    supervisor.on_stop("second", second)
    supervisor.request_stop("done")
    await supervisor.wait()
    assert order == ["second", "first"]


def test_backoff_grows_and_resets() -> None:
    delays = Backoff(initial_s=1, maximum_s=4, factor=2, reset_after_s=10).delays()
    assert [delays.after_run(0) for _ in range(4)] == [1, 2, 4, 4]
    assert delays.after_run(11) == 1
