"""Quota adapters: memquota (counts in this replica's memory) and redisquota (counts in a
Redis every replica shares, so a limit holds across replicas and restarts).

Both take Mixer's params: `quotas[{name, maxAmount, validDuration, overrides}]`, where
`name` is the quota instance (`requestcountquota.instance.istio-system`) and the first
override whose `dimensions` all match the instance's decides the limit.  A request is
granted whole or not at all.  memquota counts per rolling window of `validDuration`, in
tenths (as Mixer's did); redisquota per FIXED_WINDOW (a window of `validDuration` that starts
at the first allocation, as Mixer's redisquota did), or per ROLLING_WINDOW of `validDuration`
made of buckets of `bucketDuration`, atomically in Redis (one Lua script per allocation).
The counts (`MemoryCounts`, `RedisCounts`) also serve envoyproxy/ratelimit-style limits,
whose windows are aligned to the clock (a "minute" is a calendar minute), as that service's are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from libs.config.durations import parse_duration

# memquota's windows roll in tenths of their duration, as Mixer's did.
MEMQUOTA_TICKS = 10
# In-memory counts drop expired keys after this many decisions.
SWEEP_EVERY = 10_000


class QuotaUnavailable(Exception):
    """The counter store cannot answer (Redis down): the caller's failure policy decides."""


class Window(Enum):
    """How a limit's window moves."""

    ALIGNED = "aligned"  # fixed, starting on a multiple of its length (envoyproxy/ratelimit's units)
    FROM_FIRST = "from-first"  # fixed, starting at the key's first allocation (redisquota FIXED_WINDOW)
    ROLLING = "rolling"  # the last `valid_duration_s`, in buckets of `bucket_s`


@dataclass(frozen=True)
class Limit:
    max_amount: int
    valid_duration_s: float
    bucket_s: float = 0.0


@dataclass(frozen=True)
class _Quota:
    limit: Limit
    window: Window
    overrides: tuple[tuple[tuple[tuple[str, str], ...], Limit], ...]

    def limit_for(self, dimensions: dict[str, str]) -> Limit:
        for wanted, limit in self.overrides:
            if all(dimensions.get(name) == value for name, value in wanted):
                return limit
        return self.limit


def _seconds(value: Any, default: float = 0.0) -> float:
    return float(parse_duration(value)) if value else default


def _quotas(params: dict[str, Any], *, ticks: int = 0) -> dict[str, _Quota]:
    """The params' quotas; `ticks` > 0: every limit is a rolling window of that many buckets
    (memquota's), else as `rateLimitAlgorithm` says (redisquota's)."""
    found: dict[str, _Quota] = {}
    for quota in params.get("quotas", []):
        def limit(amount: int, valid_s: float, bucket_s: float) -> Limit:
            return Limit(amount, valid_s, valid_s / ticks if ticks else bucket_s)

        base = limit(int(quota.get("maxAmount", 0)), _seconds(quota.get("validDuration")),
                     _seconds(quota.get("bucketDuration")))
        overrides = tuple(
            (tuple(sorted((override.get("dimensions") or {}).items())),
             limit(int(override.get("maxAmount", base.max_amount)),
                   _seconds(override.get("validDuration"), base.valid_duration_s), base.bucket_s))
            for override in quota.get("overrides", []))
        rolling = bool(ticks) or quota.get("rateLimitAlgorithm") == "ROLLING_WINDOW"
        found[quota["name"]] = _Quota(base, Window.ROLLING if rolling else Window.FROM_FIRST, overrides)
    return found


def dimension_key(dimensions: dict[str, str]) -> str:
    return ";".join(f"{name}={value}" for name, value in sorted(dimensions.items()))


class Counts(Protocol):
    """Where quota counts live; `take` grants `amount` whole or not at all."""

    async def take(self, key: str, amount: int, limit: Limit, window: Window = Window.ALIGNED) -> bool: ...


@dataclass
class MemoryCounts:
    """Counts in this process's memory: with several replicas each counts on its own."""

    clock: Callable[[], float] = time.time
    _buckets: dict[str, dict[int, int]] = field(default_factory=dict)
    # When each key's counts have all expired: swept now and then, so keys seen once
    # (a dimension per caller address) do not pile up.  For a FROM_FIRST window it is also
    # when the window ends.
    _expiry: dict[str, float] = field(default_factory=dict)
    _takes: int = 0

    async def take(self, key: str, amount: int, limit: Limit, window: Window = Window.ALIGNED) -> bool:
        clock = self.clock()
        self._takes += 1
        if self._takes % SWEEP_EVERY == 0:
            self._sweep(clock)
        if window is Window.FROM_FIRST:
            if self._expiry.get(key, -math.inf) <= clock:
                self._buckets.pop(key, None)
                self._expiry[key] = clock + limit.valid_duration_s if limit.valid_duration_s else math.inf
            now, span, expiry = 0, 1, self._expiry[key]
        else:
            rolling = window is Window.ROLLING and limit.bucket_s > 0
            size = limit.bucket_s if rolling else limit.valid_duration_s
            now = int(clock // size) if size else 0
            span = max(1, round(limit.valid_duration_s / limit.bucket_s)) if rolling else 1
            expiry = (now + span) * size if size else math.inf
        buckets = self._buckets.get(key, {})
        for bucket in [b for b in buckets if b <= now - span]:
            del buckets[bucket]
        if sum(buckets.values()) + amount > limit.max_amount:
            return False
        buckets[now] = buckets.get(now, 0) + amount
        self._buckets[key] = buckets
        self._expiry[key] = expiry
        return True

    def _sweep(self, clock: float) -> None:
        for key in [k for k, expiry in self._expiry.items() if expiry <= clock]:
            del self._expiry[key]
            self._buckets.pop(key, None)


# KEYS[1]: the window's key.  ARGV: amount, max, window ms.  Granted whole or not at all; the
# window starts with the key's first allocation (the key's TTL is the rest of the window).
_FIXED = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""
# KEYS[1]: a hash of bucket -> count.  ARGV: amount, max, now bucket, buckets per window, bucket ms.
_ROLLING = """
local now = tonumber(ARGV[3])
local oldest = now - tonumber(ARGV[4]) + 1
local counts = redis.call('HGETALL', KEYS[1])
local used = 0
for i = 1, #counts, 2 do
  local bucket = tonumber(counts[i])
  if bucket < oldest then redis.call('HDEL', KEYS[1], counts[i]) else used = used + tonumber(counts[i + 1]) end
end
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * tonumber(ARGV[5]))
return 1
"""


def redis_client(url: str, pool_size: int, clients: dict[str, aioredis.Redis]) -> aioredis.Redis:
    """One client per Redis `host:port`, shared by the handlers using it.  Its pool holds
    `pool_size` connections (redisquota's connectionPoolSize); a decision waits up to a
    second for a free one rather than failing when more are in flight."""
    if url not in clients:
        host, _, port = url.rpartition(":")
        pool = aioredis.BlockingConnectionPool(host=host or url, port=int(port or 6379), max_connections=pool_size,
                                               timeout=1.0, socket_timeout=1.0, socket_connect_timeout=1.0)
        clients[url] = aioredis.Redis(connection_pool=pool)
    return clients[url]


@dataclass
class RedisCounts:
    """Counts in Redis, shared by every replica; a restart of the policy service loses
    nothing.  One atomic Lua script per decision."""

    client: aioredis.Redis
    prefix: str = "mizzen-quota"
    clock: Callable[[], float] = time.time

    async def take(self, key: str, amount: int, limit: Limit, window: Window = Window.ALIGNED) -> bool:
        # Each kind of window has keys of its own (a hash for rolling windows, a counter for
        # fixed ones), so a handler switched from one algorithm to the other starts afresh.
        key = f"{self.prefix}:{key}"
        try:
            if window is Window.ROLLING and limit.bucket_s > 0:
                key = f"{key}:rolling"
                bucket = int(self.clock() // limit.bucket_s)
                buckets = max(1, int(limit.valid_duration_s // limit.bucket_s))
                granted = await self.client.eval(
                    _ROLLING, 1, key, amount, limit.max_amount, bucket, buckets, int(limit.bucket_s * 1000))
            else:
                length_ms = max(1, int(limit.valid_duration_s * 1000))
                key = f"{key}:{int(self.clock() * 1000) // length_ms}" if window is Window.ALIGNED else f"{key}:fixed"
                granted = await self.client.eval(_FIXED, 1, key, amount, limit.max_amount, length_ms)
        except (RedisError, OSError) as exc:
            raise QuotaUnavailable(f"redis at {self._address()}: {exc}") from exc
        return bool(granted)

    def _address(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host')}:{kwargs.get('port')}"


@dataclass
class QuotaHandler:
    """A memquota or redisquota handler: its quotas' limits, counted in `counts`."""

    quotas: dict[str, _Quota]
    counts: Counts

    @classmethod
    def memquota(cls, params: dict[str, Any], counts: Counts | None = None) -> QuotaHandler:
        return cls(_quotas(params, ticks=MEMQUOTA_TICKS), counts or MemoryCounts())

    @classmethod
    def redisquota(cls, params: dict[str, Any], *, clients: dict[str, aioredis.Redis]) -> QuotaHandler:
        client = redis_client(params["redisServerUrl"], int(params.get("connectionPoolSize") or 10), clients)
        return cls(_quotas(params), RedisCounts(client))

    async def allocate(self, quota: str, dimensions: dict[str, str], amount: int) -> bool:
        """Whether `amount` more fits the quota's limit for these dimensions (and, if so, it
        is counted).  A quota the handler does not define is not limited."""
        config = self.quotas.get(quota)
        if config is None:
            return True
        return await self.counts.take(f"{quota}:{dimension_key(dimensions)}", amount, config.limit_for(dimensions),
                                      config.window)
