"""Scale scenarios on the load tool: initial sync, VirtualService changes, endpoint changes.

Each change is made alone (the next only once every proxy ACKed the last), and timed from
the moment before its KV write to the moment the last proxy finished writing its ACK of the
push that carries it.  With a `PilotProbe`, pilot's own record of that push
(`/debug/push_status`) gives the debounce it waited (`started_at - changed_at`), reported
beside the raw figure and subtracted from it, and pilot's CPU is sampled around the series.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.pilot.ledger import TYPES, Convergence
from bench.pilot.load import LoadGenerator
from bench.pilot.measure import percentile, request_cpu_s, sample
from bench.pilot.scale_mesh import MeshScale, MeshWriter

WARMUP = 2


@dataclass(frozen=True)
class PilotProbe:
    client: httpx.AsyncClient
    monitoring: str
    # Every pilot replica's pid (CPU is summed over them); the first is the one `monitoring`
    # belongs to.  Empty: no CPU figures (a pilot on another host).
    pids: tuple[int, ...] = ()

    @property
    def pid(self) -> int | None:
        return self.pids[0] if self.pids else None

    def cpu_s(self) -> float:
        return sum(sample(p).cpu_s for p in self.pids)

    async def push(self, version: str) -> dict[str, float] | None:
        """Pilot's record of the push that produced `version`: its debounce and build time."""
        body = (await self.client.get(f"{self.monitoring}/debug/push_status")).json()
        for record in body["recent"]:
            if record["version"] == version and record["changed_at"] and record["started_at"]:
                debounce = _iso(record["started_at"]) - _iso(record["changed_at"])
                return {"debounce_s": max(0.0, debounce), "push_context_s": record["duration_s"],
                        "changes": record["changes"]}
        return None


def _iso(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp).timestamp()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def summary(values: list[float]) -> dict[str, float] | None:
    """p50 / p99 (nearest rank) / max / mean in ms."""
    if not values:
        return None
    return {"p50": _ms(percentile(values, 50)), "p99": _ms(percentile(values, 99)), "max": _ms(max(values)),
            "mean": _ms(sum(values) / len(values)), "count": len(values)}


async def initial_sync(load: LoadGenerator, *, timeout_s: float) -> dict[str, Any]:
    """Open every stream at once; time until every proxy ACKed CDS, EDS, LDS and RDS."""
    start = load.connect()
    converged = await load.wait(lambda: load.ledger.converged(TYPES, start), timeout_s, "initial sync")
    ledger = load.ledger
    return {
        "all_acked_s": round(converged.last_ack - start, 3),
        "by_type_all_acked_s": {t: round(at - start, 3) for t, at in converged.last_ack_by_type.items()},
        "first_response_s": round(converged.first_arrival - start, 3),
        "same_version": converged.same_version,
        "versions": converged.versions,
        "mb_received_per_proxy": round(ledger.bytes / ledger.proxies / 1e6, 3),
    }


@dataclass
class _Change:
    wrote: float
    converged: Convergence
    version: str
    types: list[str]
    push: dict[str, float] | None
    # The most resources of the watched type one response carried.
    largest: int

    @property
    def last_ack_s(self) -> float:
        return self.converged.last_ack - self.wrote

    @property
    def debounce_s(self) -> float:
        return self.push["debounce_s"] if self.push else 0.0


async def _series(load: LoadGenerator, probe: PilotProbe | None, count: int, watch: str, change: Any, *,
                  timeout_s: float, what: str) -> dict[str, Any]:
    """`WARMUP` + `count` changes made by `change(n)`; each timed until every proxy ACKed a
    new version of `watch`."""
    ledger = load.ledger
    measured: list[_Change] = []
    cpu_before = cpu_after = 0.0
    started = finished = 0.0
    load_before = 0.0
    for n in range(WARMUP + count):
        if n == WARMUP:
            load_before = load.cpu_s()
        if n == WARMUP and probe is not None and probe.pid is not None:
            cpu_before, started = probe.cpu_s(), time.monotonic()
        wrote = time.monotonic()
        await change(n)
        converged = await load.wait(lambda wrote=wrote: ledger.converged((watch,), wrote),  # type: ignore[misc]
                                    timeout_s, f"{what} {n} on every proxy")
        if not converged.same_version:
            raise AssertionError(f"{what} {n}: proxies ACKed different versions {converged.versions}")
        version = next(iter(converged.versions[watch]))
        push = await probe.push(version) if probe is not None else None
        if n >= WARMUP:
            measured.append(_Change(wrote, converged, version, sorted(ledger.types_since(wrote)), push,
                                    ledger.largest_since(watch, wrote)))
    load_after = load.cpu_s()
    if probe is not None and probe.pid is not None:
        cpu_after, finished = probe.cpu_s(), time.monotonic()
    result: dict[str, Any] = {
        "changes": len(measured), "warmup_changes": WARMUP,
        "types_sent": sorted({t for c in measured for t in c.types}),
        "most_resources_in_one_response": max((c.largest for c in measured), default=0),
        "last_ack_after_write_ms": summary([c.last_ack_s for c in measured]),
        "first_arrival_after_write_ms": summary([c.converged.first_arrival - c.wrote for c in measured]),
        "arrival_spread_ms": summary([c.converged.last_arrival - c.converged.first_arrival for c in measured]),
        # The simulated sidecars run on the same cores: what they cost bounds what pilot can reach.
        "load_tool_cpu_ms_per_change": _ms((load_after - load_before) / max(1, len(measured))),
    }
    if probe is not None:
        result["debounce_ms"] = summary([c.debounce_s for c in measured])
        result["last_ack_after_write_minus_debounce_ms"] = summary([c.last_ack_s - c.debounce_s for c in measured])
        result["push_context_build_ms"] = summary([c.push["push_context_s"] for c in measured if c.push])
    if probe is not None and probe.pid is not None and measured:
        debug_cpu = await request_cpu_s(probe.client, probe.monitoring, probe.pid, "/debug/push_status", requests=10)
        result["pilot_cpu_ms_per_change_raw"] = _ms((cpu_after - cpu_before) / len(measured))
        result["pilot_cpu_ms_per_change"] = _ms((cpu_after - cpu_before - debug_cpu * len(measured)) / len(measured))
        result["series_duration_s"] = round(finished - started, 2)
    return result


async def virtual_service_changes(load: LoadGenerator, writer: MeshWriter, mesh: MeshScale, count: int, *,
                                  probe: PilotProbe | None, timeout_s: float) -> dict[str, Any]:
    """One VirtualService rewritten per change: every sidecar's route configuration changes."""

    async def change(n: int) -> None:
        await writer.put(mesh.virtual_service(n))

    return await _series(load, probe, count, "RDS", change, timeout_s=timeout_s, what="VirtualService change")


async def endpoint_changes(load: LoadGenerator, writer: MeshWriter, mesh: MeshScale, count: int, *,
                           probe: PilotProbe | None, timeout_s: float) -> dict[str, Any]:
    """A workload registered (even changes) or unregistered (odd): one more or one fewer
    endpoint of one service, for every sidecar."""
    if mesh.static:
        raise ValueError("endpoint changes need the workload registry (not --static-endpoints)")

    async def change(n: int) -> None:
        workload, registers = mesh.endpoint_change(n)
        if registers:
            await writer.register(workload)
        else:
            await writer.unregister(workload)

    return await _series(load, probe, count, "EDS", change, timeout_s=timeout_s, what="endpoint change")
