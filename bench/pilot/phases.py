"""One measured series: per change, write one Gateway + VirtualService pair (through
`write`), then time it into traffic on every gateway, with pilot's cost alongside."""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.pilot.config import gateway_and_route
from bench.pilot.measure import metrics, percentile, request_cpu_s, sample, tcp_counters, until_routed, until_synced
from tests.harness.ports import free_port

PUSHES = "pilot_push_contexts_total"
# A change slower than this into traffic is recorded with what pilot says about it, so an
# outlier can be told apart: a late push or ACK (pilot's side) or a config in hand that
# traffic did not meet yet (Envoy's side, or the network).
SLOW_S = 0.5
CONVERGENCE_SUM = "pilot_proxy_convergence_time_sum"
CONVERGENCE_COUNT = "pilot_proxy_convergence_time_count"


@dataclass(frozen=True)
class Target:
    """What a series runs against, and how."""

    pilot: str
    pilot_pid: int
    addresses: list[str]
    services: int
    changes: int
    warmup: int
    interval_s: float


@dataclass
class Series:
    name: str
    all_envoys_s: list[float] = field(default_factory=list)
    each_envoy_s: list[float] = field(default_factory=list)
    pushes: float = 0.0
    cpu_s: float = 0.0
    pilot_convergence_s: float = 0.0
    pilot_convergences: float = 0.0
    # The benchmark's own requests to pilot in the window, and their estimated CPU.
    debug_requests: int = 0
    debug_cpu_s: float = 0.0
    slow: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def ms(values: list[float], q: float) -> float:
            return round(percentile(values, q) * 1000, 1)

        return {
            "changes": len(self.all_envoys_s),
            "route_in_traffic_on_all_envoys_ms": {"p50": ms(self.all_envoys_s, 50), "p99": ms(self.all_envoys_s, 99),
                                                  "max": ms(self.all_envoys_s, 100)},
            "route_in_traffic_per_envoy_ms": {"p50": ms(self.each_envoy_s, 50), "p99": ms(self.each_envoy_s, 99)},
            "pilot_measured_convergence_mean_ms": round(self.pilot_convergence_s / self.pilot_convergences * 1000, 1)
            if self.pilot_convergences else None,
            "pushes": int(self.pushes),
            "pilot_cpu_ms_per_push": round((self.cpu_s - self.debug_cpu_s) / self.pushes * 1000, 1)
            if self.pushes else None,
            "pilot_cpu_ms_per_push_raw": round(self.cpu_s / self.pushes * 1000, 1) if self.pushes else None,
            "benchmark_debug_requests": self.debug_requests,
            "slow_changes": self.slow,
        }


async def run_series(name: str, write: Callable[[int, str], Awaitable[None]], target: Target, *,
                     first_change: int) -> Series:
    series = Series(name)
    pilot, pilot_pid, addresses = target.pilot, target.pilot_pid, target.addresses
    async with httpx.AsyncClient(timeout=2.0) as client:
        await until_synced(client, pilot, len(addresses))
        syncz_cpu_s = await request_cpu_s(client, pilot, pilot_pid, "/debug/syncz")
        metrics_cpu_s = await request_cpu_s(client, pilot, pilot_pid, "/metrics")
        polls = 0
        for n in range(first_change, first_change + target.warmup + target.changes):
            measured = n >= first_change + target.warmup
            if measured and not series.all_envoys_s:
                before = sample(pilot_pid)
                counters = await metrics(client, pilot, PUSHES, CONVERGENCE_SUM, CONVERGENCE_COUNT)
            port = free_port()
            trace: dict[str, list[tuple[float, str]]] = {}
            kernel = tcp_counters()
            start, wall = time.perf_counter(), time.time()
            await write(n, gateway_and_route(n, port, service=n % target.services))
            times = await until_routed(client, addresses, port, n, start, interval_s=target.interval_s, trace=trace)
            if measured and max(times) > SLOW_S:
                slow = await _slow_change(client, pilot, n, port, wall, addresses, times)
                late = [a for a, t in zip(addresses, times, strict=True) if t > SLOW_S]
                slow["polls"] = {a: _condensed(trace.get(a, [])) for a in late}
                # Host-wide, over the change: a SYN dropped at a full listen queue and
                # retried after the kernel's 1 s timeout shows here.
                now = tcp_counters()
                slow["tcp_counters"] = {name: now[name] - kernel.get(name, 0) for name in now}
                series.slow.append(slow)
            # Let every proxy ACK before the next change, so changes never overlap.
            synced_polls = await until_synced(client, pilot, len(addresses))
            if measured:
                polls += synced_polls
                series.all_envoys_s.append(max(times))
                series.each_envoy_s.extend(times)
        after = sample(pilot_pid)
        final = await metrics(client, pilot, PUSHES, CONVERGENCE_SUM, CONVERGENCE_COUNT)
    series.pushes = final[PUSHES] - counters[PUSHES]
    series.cpu_s = after.cpu_s - before.cpu_s
    series.pilot_convergence_s = final[CONVERGENCE_SUM] - counters[CONVERGENCE_SUM]
    series.pilot_convergences = final[CONVERGENCE_COUNT] - counters[CONVERGENCE_COUNT]
    series.debug_requests = polls + 1
    series.debug_cpu_s = polls * syncz_cpu_s + metrics_cpu_s
    return series


async def _slow_change(client: httpx.AsyncClient, pilot: str, change: int, port: int, wall: float,
                       addresses: list[str], times: list[float]) -> dict[str, Any]:
    """A slow change as pilot saw it: per proxy, when each type was last sent and ACKed,
    in ms after the write, beside when traffic met the change on its gateway."""
    syncz = (await client.get(f"{pilot}/debug/syncz")).json()

    def after_write(stamp: str | None) -> float | None:
        if not stamp:
            return None
        return round((datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - wall) * 1000, 1)

    return {
        "change": change, "port": port,
        "in_traffic_ms": {address: round(t * 1000, 1) for address, t in zip(addresses, times, strict=True)},
        "pilot": {row["name"]: {kind: {"sent_ms": after_write(state["sent_at"]),
                                       "acked_ms": after_write(state["acked_at"]), "last_nack": state["last_nack"]}
                                for kind, state in row["types"].items()} for row in syncz["proxies"]},
    }


def _condensed(events: list[tuple[float, str]]) -> list[str]:
    """A poll trace with runs of the same outcome folded: `12.5-40.1 ms connect: ConnectionRefusedError x6`."""
    out: list[str] = []
    run: list[tuple[float, str]] = []
    for event in [*events, (0.0, "")]:
        if run and event[1] != run[0][1]:
            first, last = run[0][0], run[-1][0]
            out.append(f"{first}-{last} ms {run[0][1]} x{len(run)}" if len(run) > 1 else f"{first} ms {run[0][1]}")
            run = []
        run.append(event)
    return out
