"""`python -m bench pilot`: pilot's convergence baseline, before the scale work.

10 real Envoy gateways (agent + Envoy each, on 127.0.1.1-10) on one pilot; 100
ServiceEntry services (two endpoints each, over 4 shared in-process echo upstreams).  Each
change moves the Gateway to a fresh port and points its VirtualService at another
service, with a response header naming the change; the figure is the time from the write
until every gateway answers on the new port with the new header (polled every 5 ms).
Changes go into mesh-config directly with libs.bus (no galley), then as a file through
galley's file source.  Pilot and galley run with their default settings (pilot debounces
0.1 s, galley scans its directory every 0.2 s).  Alongside: pilot's CPU per push
(/proc/<pid>/stat, without the benchmark's own debug polling) and its memory
(/proc/<pid>/status).  Writes bench/results/pilot.json; prints each figure beside its goal.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.pilot.config import GATEWAY_LABELS, ConfigWriter, service_entries
from bench.pilot.measure import sample
from bench.pilot.phases import Target, run_series
from samples.echo import EchoServer
from tests.harness.mesh import Mesh, PilotService
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

RESULTS = Path(__file__).resolve().parents[1] / "results" / "pilot.json"
UPSTREAMS = 4
WARMUP = 3
POLL_INTERVAL_S = float(os.environ.get("BENCH_POLL_MS", "5")) / 1000


def _ready(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200


def _start_pilot(group: ProcessGroup, nats_url: str) -> PilotService:
    port, xds = free_port(), free_port()
    process = group.python("pilot", "services.pilot", "--nats-url", nats_url, "--log-json", "--log-level", "info",
                           "--xds-address", "127.0.0.1", "--xds-port", str(xds), "--monitoring-address", "127.0.0.1",
                           "--monitoring-port", str(port))
    wait_until(lambda: _ready(port), timeout=30, what="pilot ready")
    return PilotService(process, port, xds)


def _start_galley(group: ProcessGroup, nats_url: str, config_dir: Path) -> None:
    port = free_port()
    group.python("galley", "services.galley", "--nats-url", nats_url, "--log-json", "--log-level", "info",
                 "--config-dir", str(config_dir), "--monitoring-address", "127.0.0.1",
                 "--monitoring-port", str(port), "--api-port", "0")
    wait_until(lambda: _ready(port), timeout=30, what="galley ready")


async def _measure(group: ProcessGroup, work: Path, nats_url: str, pilot: PilotService, addresses: list[str],
                   upstreams: list[EchoServer], *, services: int, changes: int) -> dict[str, Any]:
    target = Target(pilot.monitoring, pilot.process.pid, addresses, services, changes, WARMUP, POLL_INTERVAL_S)
    base = service_entries(services, upstreams)
    writer = await ConfigWriter.connect(nats_url)
    try:
        await writer.put(base)

        async def write_kv(change: int, text: str) -> None:
            await writer.put(text)

        loaded = sample(pilot.process.pid)
        direct = await run_series("direct", write_kv, target, first_change=0)
    finally:
        await writer.close()

    # Galley owns mesh-config from here: the same services as a file (unchanged in the KV),
    # and each change as one file holding the Gateway and the VirtualService.
    config_dir = work / "config"
    config_dir.mkdir()
    (config_dir / "services.yaml").write_text(base)
    _start_galley(group, nats_url, config_dir)

    async def write_file(change: int, text: str) -> None:
        staging = config_dir / ".bench.tmp"
        staging.write_text(text)
        os.replace(staging, config_dir / "bench.yaml")

    galley = await run_series("galley", write_file, target, first_change=1000)
    end = sample(pilot.process.pid)
    return {
        "direct_kv": direct.summary(),
        "through_galley_files": galley.summary(),
        "pilot_memory_mb": {"after_loading_services": round(loaded.rss_kb / 1024, 1),
                            "after_all_changes": round(end.rss_kb / 1024, 1), "peak": round(end.peak_rss_kb / 1024, 1)},
    }


def _print(results: dict[str, Any]) -> None:
    rows: list[tuple[str, object]] = []
    for key, label in (("direct_kv", "KV write"), ("through_galley_files", "galley file write")):
        figures = results[key]
        traffic = figures["route_in_traffic_on_all_envoys_ms"]
        gateways = results["setup"]["gateways"]
        rows += [(f"{label} -> new route in traffic on all {gateways} Envoys, p50 (ms)", traffic["p50"]),
                 (f"{label} -> new route in traffic on all {gateways} Envoys, p99 (ms)", traffic["p99"]),
                 (f"{label} -> pilot-measured convergence, mean (ms)", figures["pilot_measured_convergence_mean_ms"]),
                 (f"{label}: pilot CPU per push (ms)", figures["pilot_cpu_ms_per_push"])]
    memory = results["pilot_memory_mb"]
    setup = results["setup"]
    rows += [(f"pilot RSS with {setup['services']} services and {setup['gateways']} gateways (MB)",
              memory["after_loading_services"]),
             ("pilot RSS after all changes / peak (MB)", f"{memory['after_all_changes']} / {memory['peak']}")]
    print(f"{'figure':72} {'result':>14} {'goal':>10}")
    for label, value in rows:
        print(f"{label:72} {value!s:>14} {'baseline':>10}")


def main() -> int:
    gateways = int(os.environ.get("BENCH_GATEWAYS", "10"))
    services = int(os.environ.get("BENCH_SERVICES", "100"))
    changes = int(os.environ.get("BENCH_CHANGES", "30"))
    work = Path(tempfile.mkdtemp(prefix="mzb-pilot-", dir="/tmp"))
    (work / "mesh").mkdir()
    group = ProcessGroup(work)
    upstreams = [EchoServer(f"upstream-{i}").start() for i in range(UPSTREAMS)]
    try:
        nats = start_nats(group, work / "nats")
        pilot = _start_pilot(group, nats.url)
        mesh = Mesh(group, nats, work / "mesh")
        addresses = [f"127.0.1.{i + 1}" for i in range(gateways)]
        proxies = [mesh.proxy(pilot, name=f"gateway-{i + 1}", node_type="router", namespace="istio-system",
                              labels=GATEWAY_LABELS, bind_address=address, wait_live=False)
                   for i, address in enumerate(addresses)]
        for proxy in proxies:
            wait_until(proxy.admin.ready, timeout=60, what=f"Envoy of {proxy.node_id} LIVE")
        measured = asyncio.run(_measure(group, work, nats.url, pilot, addresses, upstreams, services=services,
                                        changes=changes))
    except BaseException:
        print(group.logs()[-5000:], file=sys.stderr)
        raise
    finally:
        group.stop_all()
        for upstream in upstreams:
            upstream.stop()
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "setup": {"gateways": gateways, "services": services, "endpoints_per_service": 2, "upstreams": UPSTREAMS,
                  "changes": changes, "warmup_changes": WARMUP, "poll_interval_ms": POLL_INTERVAL_S * 1000,
                  "change": "Gateway moved to a new port + VirtualService to another service (LDS + RDS)",
                  "pilot": "default settings (debounce quiet 0.1 s, max 10 s)",
                  "galley": "default settings (file scan every 0.2 s)"},
        **measured,
        "goals": "baseline",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
