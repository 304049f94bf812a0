"""The scale benchmark's run: a generated mesh in NATS, pilot as a real process with its
default settings, and the load tool's simulated sidecars, all on this machine.

Order: nats-server; the whole mesh written (ServiceEntries into mesh-config, registrations
into mesh-workloads, refreshed from then on as agents do); pilot started (so it loads the
mesh as after a restart); the load workers spawned; every stream opened at once and timed to
full sync; then VirtualService changes and endpoint changes, one at a time; pilot's memory
sampled after the sync and at the end (peak).  Every process is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.pilot import scale
from bench.pilot.load import LoadGenerator
from bench.pilot.measure import sample
from bench.pilot.scale_mesh import MeshScale, MeshWriter
from tests.harness.mesh import PilotService
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until


@dataclass(frozen=True)
class ScaleSetup:
    services: int = 1000
    endpoints: int = 3
    namespaces: int = 10
    proxies: int = 1000
    processes: int = 4
    vs_changes: int = 30
    endpoint_changes: int = 30
    timeout_s: float = 120.0
    # Extra pilot flags (e.g. `--debounce-quiet-s 0`); none: pilot's defaults.
    pilot_args: tuple[str, ...] = ()
    # Run pilot under `py-spy record` into this file (speedscope JSON), if set.
    profile: Path | None = None
    # Pilot processes sharing the xDS port (SO_REUSEPORT): the kernel spreads the streams
    # over them, and each computes every push from NATS on its own.
    replicas: int = 1
    # The simulated sidecars' xDS protocol: "GRPC" (state of the world) or "DELTA_GRPC".
    api: str = "GRPC"


def _ready(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200


def start_pilot(group: ProcessGroup, nats_url: str, extra: tuple[str, ...], profile: Path | None,
                xds_port: int | None = None, name: str = "pilot") -> PilotService:
    port, xds = free_port(), xds_port or free_port()
    argv = ["--nats-url", nats_url, "--log-json", "--log-level", "warning", "--xds-address", "127.0.0.1",
            "--xds-port", str(xds), "--monitoring-address", "127.0.0.1", "--monitoring-port", str(port), *extra]
    if profile is None:
        process = group.python(name, "services.pilot", *argv)
    else:
        import sys

        spy = Path(sys.executable).with_name("py-spy")
        process = group.start(name, [str(spy), "record", "--format", "speedscope", "--output", str(profile),
                                        "--rate", "100", "--", sys.executable, "-m", "services.pilot", *argv])
    wait_until(lambda: _ready(port), timeout=120, interval=0.05, what="pilot ready")
    return PilotService(process, port, xds)


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


async def _streams(client: httpx.AsyncClient, monitoring: str) -> int:
    """Streams a pilot holds (its `pilot_xds` gauge)."""
    text = (await client.get(f"{monitoring}/metrics")).text
    return int(next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("pilot_xds ")))


def pilot_pid(service: PilotService) -> int:
    """Pilot's own pid (under py-spy, the child of the py-spy process)."""
    children = Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
    if children.exists():
        found = children.read_text().split()
        if found:
            return int(found[0])
    return service.process.pid


async def run(setup: ScaleSetup) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mzb-scale-", dir="/tmp"))
    group = ProcessGroup(work)
    mesh = MeshScale(services=setup.services, endpoints=setup.endpoints, namespaces=setup.namespaces)
    results: dict[str, Any] = {"setup": {k: v for k, v in asdict(setup).items() if k != "profile"}}
    writer: MeshWriter | None = None
    pilot: PilotService | None = None
    try:
        nats = start_nats(group, work / "nats")
        writer = await MeshWriter.connect(nats.url)
        began = time.monotonic()
        revision = await writer.write_mesh(mesh)
        writer.start_refreshing()
        results["mesh_written_s"] = round(time.monotonic() - began, 2)
        results["config_revision"] = revision
        began = time.monotonic()
        pilot = start_pilot(group, nats.url, setup.pilot_args, setup.profile)
        replicas = [pilot] + [start_pilot(group, nats.url, setup.pilot_args, None, xds_port=pilot.xds_port,
                                          name=f"pilot-{n + 1}") for n in range(1, setup.replicas)]
        pids = tuple(pilot_pid(p) for p in replicas)
        results["pilot_start_to_ready_s"] = round(time.monotonic() - began, 2)
        results["pilot_rss_mb_loaded"] = _mb(max(sample(p).rss_kb for p in pids))
        async with httpx.AsyncClient(timeout=30.0) as client:
            probe = scale.PilotProbe(client, pilot.monitoring, pids)
            load = LoadGenerator(pilot.address, mesh.proxies(setup.proxies), processes=setup.processes, api=setup.api)
            await load.start()
            try:
                cpu = probe.cpu_s()
                results["initial_sync"] = await scale.initial_sync(load, timeout_s=setup.timeout_s)
                results["initial_sync"]["pilot_cpu_s"] = round(probe.cpu_s() - cpu, 2)
                results["pilot_rss_mb_synced"] = _mb(max(sample(p).rss_kb for p in pids))
                if setup.replicas > 1:
                    results["streams_per_replica"] = [await _streams(client, p.monitoring) for p in replicas]
                if setup.vs_changes:
                    results["virtual_service_changes"] = await scale.virtual_service_changes(
                        load, writer, mesh, setup.vs_changes, probe=probe, timeout_s=setup.timeout_s)
                if setup.endpoint_changes:
                    results["endpoint_changes"] = await scale.endpoint_changes(
                        load, writer, mesh, setup.endpoint_changes, probe=probe, timeout_s=setup.timeout_s)
                ends = [sample(p) for p in pids]
                # With replicas: the largest replica's (the goal is per pilot process) and the sum.
                results["pilot_rss_mb_end"] = _mb(max(e.rss_kb for e in ends))
                results["pilot_rss_mb_peak"] = _mb(max(e.peak_rss_kb for e in ends))
                results["pilot_rss_mb_peak_all_replicas"] = _mb(sum(e.peak_rss_kb for e in ends))
                results["nacks"] = load.ledger.nacks
                results["final_versions"] = load.ledger.latest()
            finally:
                results["streams"] = await load.stop()
        results["registry_refreshes"] = writer.refreshes
        return results
    except BaseException:
        print(group.logs()[-5000:])
        raise
    finally:
        try:
            if writer is not None:
                await writer.close()
        finally:
            # Whatever the writer's close raised, nothing this run started outlives it.
            if setup.profile is not None and pilot is not None:
                # py-spy writes its profile on SIGINT; the group's SIGTERM would lose it.
                os.kill(pilot.process.pid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    pilot.process.popen.wait(timeout=60)
            group.stop_all()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import json
    import sys

    import uvloop

    # `python -m bench.pilot.scale_run services=100 proxies=100 api=DELTA_GRPC ...`: a one-off
    # run at another scale or on delta xDS.
    fields: dict[str, Any] = {k: v if k == "api" else int(v) for k, v in (a.split("=") for a in sys.argv[1:])}
    fields.setdefault("timeout_s", float(os.environ.get("T", "300")))
    print(json.dumps(uvloop.run(run(ScaleSetup(**fields))), indent=2))
