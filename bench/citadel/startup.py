"""Time from starting an agent (identity on) to its Envoy holding a valid workload
certificate, read from Envoy's own admin /certs — what Envoy has, not what the agent sent."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness.citadel import Citadel, identity_args
from tests.harness.identity import write_override
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup

URI = "spiffe://cluster.local/ns/bench/sa/web"


def _holds_cert(client: httpx.Client, admin: str) -> bool:
    try:
        body = client.get(f"{admin}/certs", timeout=1.0).json()
    except (httpx.HTTPError, ValueError):
        return False
    for entry in body.get("certificates", []):
        for cert in entry.get("cert_chain", []):
            expires = dt.datetime.fromisoformat(cert["expiration_time"].replace("Z", "+00:00"))
            if {"uri": URI} in cert.get("subject_alt_names", []) and expires > dt.datetime.now(dt.UTC):
                return True
    return False


def _log_time(log: str, event: str) -> float | None:
    for line in log.splitlines():
        if line.startswith("{") and f'"event": "{event}"' in line:
            stamp = json.loads(line)["timestamp"]
            return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(group: ProcessGroup, citadel: Citadel, pilot_address: str, work: Path, socket_dir: Path,
            *, starts: int) -> dict[str, Any]:
    token = citadel.token_file(work / "web.token", "bench", "web")
    from_spawn: list[float] = []
    from_agent: list[float] = []
    agent_has_cert: list[float] = []
    with httpx.Client() as client:
        for run in range(starts):
            admin_port, port = free_port(), free_port()
            override = write_override(work / f"override-{run}.json", port)
            args = identity_args(citadel, token, sds_socket=socket_dir / f"{run}.sock", override=override)
            spawned = time.perf_counter()
            process = group.python(
                f"agent-{run}", "services.agent", "--log-json", "--pilot-address", pilot_address,
                "--pod-name", f"web-{run}", "--namespace", "bench", "--service-account", "web",
                "--admin-port", str(admin_port), "--stats-port", "0", "--health-port", "0",
                "--monitoring-port", str(free_port()), "--state-dir", str(work / f"agent-{run}"),
                "--envoy-concurrency", "1", *args)
            admin = f"http://127.0.0.1:{admin_port}"
            deadline = spawned + 30
            while not _holds_cert(client, admin):
                if time.perf_counter() > deadline or not process.alive():
                    raise RuntimeError(f"agent {run} did not get a certificate into Envoy:\n{process.log()[-3000:]}")
                time.sleep(0.002)
            held_wall, held = time.time(), time.perf_counter()
            from_spawn.append(held - spawned)
            log = process.log()
            started, obtained = _log_time(log, "bootstrap written"), _log_time(log, "workload certificate obtained")
            if started is not None:
                from_agent.append(held_wall - started)
                if obtained is not None:
                    agent_has_cert.append(obtained - started)
            process.stop()
    return {
        "starts": starts,
        "from_process_spawn_ms": {"p50": round(statistics.median(from_spawn) * 1000, 1),
                                  "p99": round(_percentile(from_spawn, 0.99) * 1000, 1)},
        "from_agent_run_ms": {"p50": round(statistics.median(from_agent) * 1000, 1),
                              "p99": round(_percentile(from_agent, 0.99) * 1000, 1)},
        # Part of the above: until the agent itself holds the certificate (key, CSR, citadel).
        "agent_run_to_agent_cert_ms": {"p50": round(statistics.median(agent_has_cert) * 1000, 1),
                                       "p99": round(_percentile(agent_has_cert, 0.99) * 1000, 1)},
    }
