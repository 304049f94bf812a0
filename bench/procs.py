"""Process helpers shared by the benchmarks (reuse the test harness's launchers)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.harness.nats import NatsServer
from tests.harness.nats import start_nats as _start_nats
from tests.harness.processes import ProcessGroup


def start_nats(group: ProcessGroup, store: Path) -> NatsServer:
    return _start_nats(group, store)


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout_s}s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
