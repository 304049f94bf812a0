"""`mizzenctl demo`: the first demo — nats, galley, pilot, an ingress gateway and two
echo upstreams, routed by the YAML in samples/demo/config."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog

from libs.envoy.binaries import nats_server_binary
from tools.localmesh.processes import ManagedProcess, ProcessFailed, ProcessSpec

log = structlog.get_logger(__name__)

SAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "samples" / "demo" / "config"


@dataclass(frozen=True)
class DemoPorts:
    nats: int = 14222
    galley_monitoring: int = 15016
    pilot_xds: int = 15010
    pilot_monitoring: int = 15014
    ingress: int = 8080
    ingress_admin: int = 15000
    agent_monitoring: int = 15020
    upstream_a: int = 18081
    upstream_b: int = 18082


def demo_specs(state_dir: Path, config_dir: Path, ports: DemoPorts) -> list[ProcessSpec]:
    python = sys.executable
    nats_url = f"nats://127.0.0.1:{ports.nats}"
    common = ["--nats-url", nats_url, "--log-level", "info"]
    return [
        ProcessSpec("nats", [str(nats_server_binary()), "-js", "-a", "127.0.0.1", "-p", str(ports.nats),
                             "-sd", str(state_dir / "nats")]),
        ProcessSpec("galley", [python, "-m", "services.galley", *common, "--config-dir", str(config_dir),
                               "--monitoring-address", "127.0.0.1",
                               "--monitoring-port", str(ports.galley_monitoring)],
                    ready_url=f"http://127.0.0.1:{ports.galley_monitoring}/readyz"),
        ProcessSpec("pilot", [python, "-m", "services.pilot", *common, "--xds-address", "127.0.0.1",
                              "--xds-port", str(ports.pilot_xds), "--monitoring-address", "127.0.0.1",
                              "--monitoring-port", str(ports.pilot_monitoring)],
                    ready_url=f"http://127.0.0.1:{ports.pilot_monitoring}/readyz"),
        ProcessSpec("upstream-a", [python, "-m", "samples.echo", "--name", "upstream-a",
                                   "--port", str(ports.upstream_a)]),
        ProcessSpec("upstream-b", [python, "-m", "samples.echo", "--name", "upstream-b",
                                   "--port", str(ports.upstream_b)]),
        ProcessSpec("ingress", [python, "-m", "services.agent", "--node-type", "router",
                                "--pod-name", "ingressgateway", "--namespace", "istio-system",
                                "--labels", "istio=ingressgateway,app=istio-ingressgateway",
                                "--instance-ip", "127.0.0.1", "--bind-address", "127.0.0.1",
                                "--pilot-address", f"127.0.0.1:{ports.pilot_xds}",
                                "--admin-port", str(ports.ingress_admin), "--stats-port", "0", "--health-port", "0",
                                "--monitoring-port", str(ports.agent_monitoring),
                                "--state-dir", str(state_dir / "ingress")],
                    ready_url=f"http://127.0.0.1:{ports.ingress_admin}/ready", ready_body="LIVE"),
    ]


async def _run(state_dir: Path, config_dir: Path, ports: DemoPorts) -> int:
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    processes = [ManagedProcess(spec, state_dir / "logs") for spec in demo_specs(state_dir, config_dir, ports)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisors: list[asyncio.Task[None]] = []
    try:
        for process in processes:
            print(f"  starting {process.spec.name} ...", flush=True)
            await process.start()
            await process.wait_ready()
            supervisors.append(asyncio.create_task(process.supervise(), name=f"supervise-{process.spec.name}"))
        print(_banner(config_dir, ports, state_dir), flush=True)
        await stop.wait()
        print("\nstopping ...", flush=True)
        return 0
    except ProcessFailed as exc:
        print(f"demo failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        for process in reversed(processes):
            await process.stop()
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)


def _banner(config_dir: Path, ports: DemoPorts, state_dir: Path) -> str:
    return f"""
Mizzen demo is up.

  curl -s http://127.0.0.1:{ports.ingress}/hello -o /dev/null -D - | grep x-upstream

Routing follows {config_dir / 'route.yaml'}: change the weights (e.g. 50/50) or the
hosts, save, and the next requests follow within a second.  Invalid edits are reported
in {state_dir / 'logs' / 'galley.log'} and the previous routing keeps serving.

Logs: {state_dir / 'logs'}   Ctrl-C stops everything.
"""


def run_demo(state_dir: Path, config_dir: Path = SAMPLE_CONFIG, ports: DemoPorts | None = None) -> int:
    return asyncio.run(_run(state_dir.resolve(), config_dir.resolve(), ports or DemoPorts()))
