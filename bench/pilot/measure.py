"""Timing a config change into traffic on every gateway, and pilot's CPU and memory."""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class ProcessSample:
    cpu_s: float
    rss_kb: int
    peak_rss_kb: int


def sample(pid: int) -> ProcessSample:
    """User + system CPU seconds (/proc/<pid>/stat) and resident memory (/proc/<pid>/status)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks
    memory = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                memory[key] = int(value.split()[0])
    return ProcessSample(cpu_s, memory["VmRSS"], memory["VmHWM"])


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: with 30 samples, p99 is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def until_routed(client: httpx.AsyncClient, addresses: list[str], port: int, change: int, start: float, *,
                       interval_s: float, timeout_s: float = 60.0,
                       trace: dict[str, list[tuple[float, str]]] | None = None) -> list[float]:
    """Seconds from `start` until each gateway answers on `port` with `x-change: change`.

    Polling must not load the machine it measures: until the new listener exists a bare TCP
    connect is refused at once, and only a connect that succeeds is followed by the HTTP
    request that proves the route (a listener serves only once its routes arrived).
    `trace`: filled per address with what each poll met (ms after `start`), to explain an
    outlier.
    """

    def note(address: str, what: str) -> None:
        if trace is not None:
            trace.setdefault(address, []).append((round((time.perf_counter() - start) * 1000, 1), what))

    async def listening(address: str) -> bool:
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            note(address, f"connect: {type(exc).__name__}")
            return False
        writer.close()
        note(address, "connect: ok")
        return True

    async def one(address: str) -> float:
        while True:
            if await listening(address):
                try:
                    response = await client.get(f"http://{address}:{port}/")
                    note(address, f"GET {response.status_code} x-change={response.headers.get('x-change')}")
                    if response.headers.get("x-change") == str(change):
                        return time.perf_counter() - start
                except httpx.HTTPError as exc:
                    note(address, f"GET: {type(exc).__name__}")
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError(f"gateway {address} did not route change {change} within {timeout_s}s")
            await asyncio.sleep(interval_s)

    return list(await asyncio.gather(*(one(a) for a in addresses)))


async def until_synced(client: httpx.AsyncClient, pilot: str, proxies: int, *, timeout_s: float = 60.0) -> int:
    """Wait until every proxy has ACKed pilot's current version (so changes never overlap);
    return how many /debug/syncz requests that took (each costs pilot some CPU)."""
    deadline = time.perf_counter() + timeout_s
    polls = 0
    while True:
        syncz = (await client.get(f"{pilot}/debug/syncz")).json()
        polls += 1
        rows = syncz["proxies"]
        if len(rows) == proxies and all(r["synced_version"] == syncz["version"] for r in rows):
            return polls
        if time.perf_counter() > deadline:
            raise TimeoutError(f"proxies did not sync with pilot's version {syncz['version']}")
        await asyncio.sleep(0.02)


async def request_cpu_s(client: httpx.AsyncClient, pilot: str, pid: int, path: str, *, requests: int = 50) -> float:
    """Pilot's CPU seconds per request of `path`, to take the benchmark's own polling out
    of pilot's cost per push."""
    before = sample(pid)
    for _ in range(requests):
        await client.get(f"{pilot}{path}")
    return (sample(pid).cpu_s - before.cpu_s) / requests


async def metrics(client: httpx.AsyncClient, pilot: str, *names: str) -> dict[str, float]:
    """Unlabelled samples of pilot's /metrics."""
    text = (await client.get(f"{pilot}/metrics")).text
    found = {name: 0.0 for name in names}
    for family in text_string_to_metric_families(text):
        for metric_sample in family.samples:
            if metric_sample.name in found and not metric_sample.labels:
                found[metric_sample.name] = float(metric_sample.value)
    return found


# Kernel TCP counters that tell a dropped connection attempt from a late config.
TCP_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans")


def tcp_counters() -> dict[str, int]:
    """This host's TcpExt counters named in TCP_COUNTERS (/proc/net/netstat), empty where unreadable."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            for name, value in zip(names.split()[1:], values.split()[1:], strict=True):
                if name in TCP_COUNTERS:
                    found[name] = int(value)
    return found
