"""`python -m bench pilot`: issue 7's figures, each printed beside its goal.

Two parts.  The scale part (`scale_run`): a generated mesh of 1,000 ServiceEntry services x
3 registered endpoints in NATS, pilot as a real process, and 1,000 simulated sidecars from
the load tool (`load`), timed to full sync, then through VirtualService and endpoint
changes.  The Envoy part: 10 real Envoy gateways (agent + Envoy each, on 127.0.1.1-10) on one pilot; 100
ServiceEntry services (two endpoints each, over 4 shared in-process echo upstreams).  Each
change moves the Gateway to a fresh port and points its VirtualService at another
service, with a response header naming the change; the figure is the time from the write
until every gateway answers on the new port with the new header (polled every 5 ms).
Changes go into mesh-config directly with libs.bus (no galley), then as a file through
galley's file source.  Pilot and galley run with their default settings (pilot debounces
0.1 s, galley scans its directory every 0.2 s).  Alongside: pilot's CPU per push
(/proc/<pid>/stat, without the benchmark's own debug polling) and its memory
(/proc/<pid>/status).  Then the floor under the scale part's two latencies
(`transport_floor`): Python gRPC alone, with no translation, carrying each change's
response and ACK over 1,000 streams on the same two cores; and the floor under both with
the load tool itself (`replay_floor`): a server that translates nothing replaying pilot's
responses to the same simulated sidecars.  Writes bench/results/pilot.json; prints each
figure beside its goal.
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
from bench.pilot.replay_floor import floors as replay_floors
from bench.pilot.scale_run import ScaleSetup
from bench.pilot.scale_run import run as run_scale
from bench.pilot.transport_floor import floors
from libs.runtime import configure_logging
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


def _envoys() -> dict[str, Any]:
    """10 real Envoys on one pilot: KV write -> new route in traffic (see the module doc)."""
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
    return {
        "setup": {"gateways": gateways, "services": services, "endpoints_per_service": 2, "upstreams": UPSTREAMS,
                  "changes": changes, "warmup_changes": WARMUP, "poll_interval_ms": POLL_INTERVAL_S * 1000,
                  "change": "Gateway moved to a new port + VirtualService to another service (LDS + RDS)",
                  "pilot": "default settings (debounce quiet 0.1 s, max 10 s)",
                  "galley": "default settings (file scan every 0.2 s)"},
        **measured,
    }


def _scale(replicas: int = 1, api: str = "GRPC") -> dict[str, Any]:
    """The load tool's simulated sidecars at issue 7's scale (see bench/pilot/scale_run.py),
    on `replicas` pilots sharing the xDS port, speaking `api` (SotW or delta xDS)."""
    import uvloop

    setup = ScaleSetup(services=int(os.environ.get("BENCH_SCALE_SERVICES", "1000")),
                       proxies=int(os.environ.get("BENCH_SCALE_PROXIES", "1000")),
                       vs_changes=int(os.environ.get("BENCH_SCALE_CHANGES", "20")),
                       endpoint_changes=int(os.environ.get("BENCH_SCALE_CHANGES", "20")), replicas=replicas,
                       api=api)
    return uvloop.run(run_scale(setup))


def goals(envoys: dict[str, Any], scale: dict[str, Any], replicated: dict[str, Any] | None = None,
          floor: dict[str, Any] | None = None, delta: dict[str, Any] | None = None,
          replayed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Issue 7's table: each figure beside its goal (None: report only); with `replicated`,
    the scale figures again on several pilots sharing the port; with `delta`, again with the
    sidecars on delta xDS; with `floor`, what Python gRPC alone takes to carry each change;
    with `replayed`, what each change takes the load tool from a server that translates
    nothing."""

    def row(figure: str, result: float, goal: float | None, unit: str) -> dict[str, Any]:
        return {"figure": figure, "result": result, "goal": goal, "unit": unit,
                "met": None if goal is None else result < goal}

    def scale_rows(run: dict[str, Any], label: str) -> list[dict[str, Any]]:
        sync = run["initial_sync"]
        vs = run["virtual_service_changes"]
        eds = run["endpoint_changes"]
        setup = run["setup"]
        at = f"{label}{setup['services']} services x {setup['endpoints']} endpoints, {setup['proxies']} proxies"
        return [
            row(f"{at}, no Sidecar scoping: initial sync of all", sync["all_acked_s"], 10.0, "s"),
            row(f"{label}one VirtualService change: last ACK after the KV write, debounce excluded, p99",
                vs["last_ack_after_write_minus_debounce_ms"]["p99"], 1000.0, "ms"),
            row("  (its debounce, p99, reported separately)", vs["debounce_ms"]["p99"], None, "ms"),
            row(f"{label}one endpoint change: last EDS ACK after the KV write, p99",
                eds["last_ack_after_write_ms"]["p99"], 300.0, "ms"),
            row(f"{label}pilot RSS at that scale (peak, largest pilot process)", run["pilot_rss_mb_peak"], 600.0,
                "MB"),
            row(f"{label}pilot CPU per VirtualService change (all pilots)", vs["pilot_cpu_ms_per_change"], None, "ms"),
            row(f"{label}pilot CPU per endpoint change (all pilots)", eds["pilot_cpu_ms_per_change"], None, "ms"),
        ]

    rows = scale_rows(scale, "")
    if replicated is not None:
        rows += scale_rows(replicated, f"{replicated['setup']['replicas']} pilots sharing the port: ")
    if delta is not None:
        rows += scale_rows(delta, "sidecars on delta xDS: ")
    rows.append(row(f"{envoys['setup']['gateways']} real Envoys: KV write to new route in effect in traffic, p99",
                    envoys["direct_kv"]["route_in_traffic_on_all_envoys_ms"]["p99"], 500.0, "ms"))
    if floor is not None:
        for name, label in (("virtual_service_change", "a VirtualService change"),
                            ("endpoint_change", "an endpoint change")):
            rows.append(row(f"floor: Python gRPC alone carrying {label} to 1000 streams and its ACKs back, p50 round",
                            floor[name]["round_ms_p50"], None, "ms"))
    if replayed is not None:
        for name, label in (("virtual_service_change", "a VirtualService change"),
                            ("endpoint_change", "an endpoint change")):
            rows.append(row(f"floor: {label} replayed to {replayed['proxies']} simulated sidecars by a server that "
                            "translates nothing: last ACK, p99", replayed[name]["last_ack_ms"]["p99"], None, "ms"))
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'figure':96} {'result':>10} {'goal':>10}  met")
    for r in rows:
        goal = "report" if r["goal"] is None else f"< {r['goal']:g}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "MISSED")
        print(f"{r['figure']:96} {r['result']:>8g} {r['unit']:2} {goal:>10}  {met}")


def main() -> int:
    # The replay floor runs pilot's stream code in this process, which logs each response at debug.
    configure_logging("warning")
    envoys = _envoys()
    scale = _scale()
    # Pilot on both cores: the same run on two pilots sharing the xDS port (0: skip it).
    replicas = int(os.environ.get("BENCH_PILOT_REPLICAS", "2"))
    replicated = _scale(replicas) if replicas > 1 else None
    # The same run with the sidecars on delta xDS, as the agent's `--xds-api DELTA_GRPC` asks (0: skip it).
    delta = _scale(api="DELTA_GRPC") if os.environ.get("BENCH_PILOT_DELTA", "1") != "0" else None
    floor = floors()
    replayed = replay_floors()
    rows = goals(envoys, scale, replicated, floor, delta, replayed)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "goals": rows,
        "envoys": envoys,
        "scale": scale,
        "scale_replicated": replicated,
        "scale_delta": delta,
        "transport_floor": floor,
        "replay_floor": replayed,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _print(rows)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
