"""redisquota's windows counted in a real redis-server (Debian's): a FIXED_WINDOW starts at
its first allocation, as Mixer's did, so a calendar boundary does not reset it; an aligned
window (envoyproxy/ratelimit's units) does.  The clock the windows are keyed by is injected;
the FIXED_WINDOW's end is Redis's own key expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.policy.adapters.quota import Limit, RedisCounts, Window
from tests.harness.processes import ProcessGroup
from tests.harness.redis import RedisServer, start_redis


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    base: Path = tmp_path_factory.mktemp("redis-counts")
    group = ProcessGroup(base)
    try:
        yield start_redis(group, base / "data")
    finally:
        group.stop_all()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the emptied server."""
    redis_server.flush()
    connected = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        yield connected
    finally:
        await connected.aclose()


async def test_fixed_window_spans_a_calendar_boundary_and_an_aligned_one_does_not(client: aioredis.Redis) -> None:
    clock = Clock(59.9)
    counts = RedisCounts(client, clock=clock)
    limit = Limit(max_amount=1, valid_duration_s=60.0)
    assert await counts.take("fixed", 1, limit, Window.FROM_FIRST) is True
    assert await counts.take("aligned", 1, limit, Window.ALIGNED) is True
    clock.now = 60.1
    assert await counts.take("fixed", 1, limit, Window.FROM_FIRST) is False
    assert await counts.take("aligned", 1, limit, Window.ALIGNED) is True
    # The fixed window's key lives for the window: Redis expires it, nothing else does.
    ttl_ms = await client.pttl("mizzen-quota:fixed:fixed")
    assert 0 < ttl_ms <= 60_000


async def test_fixed_window_grants_again_once_redis_expires_it(client: aioredis.Redis) -> None:
    counts = RedisCounts(client)
    limit = Limit(max_amount=2, valid_duration_s=0.3)
    assert [await counts.take("short", 1, limit, Window.FROM_FIRST) for _ in range(3)] == [True, True, False]
    deadline = time.monotonic() + 10
    while not await counts.take("short", 1, limit, Window.FROM_FIRST):
        assert time.monotonic() < deadline, "the window never ended"
        await asyncio.sleep(0.05)
    assert await client.pttl("mizzen-quota:short:fixed") > 0


async def test_a_quota_switched_to_the_other_algorithm_counts_afresh(client: aioredis.Redis) -> None:
    counts = RedisCounts(client)
    fixed, rolling = Limit(max_amount=1, valid_duration_s=60.0), Limit(1, 60.0, bucket_s=1.0)
    assert await counts.take("quota", 1, fixed, Window.FROM_FIRST) is True
    # Same quota, now a rolling window: its own key, not the fixed window's counter.
    assert await counts.take("quota", 1, rolling, Window.ROLLING) is True
    assert await counts.take("quota", 1, rolling, Window.ROLLING) is False
    assert await counts.take("quota", 1, fixed, Window.FROM_FIRST) is False
