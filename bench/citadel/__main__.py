"""`python -m bench.citadel`: CSR signing throughput and time-to-certificate; writes
bench/results/citadel.json and prints each figure beside its goal."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from bench.citadel import signing, startup
from tests.harness.citadel import start_citadel
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

RESULTS = Path(__file__).resolve().parents[1] / "results" / "citadel.json"
GOAL_RATIO = 0.70
GOAL_STARTUP_MS = 200.0


def _pilot(group: ProcessGroup, nats_url: str) -> str:
    import httpx

    port, xds = free_port(), free_port()
    group.python("pilot", "services.pilot", "--nats-url", nats_url, "--log-json", "--xds-address", "127.0.0.1",
                 "--xds-port", str(xds), "--monitoring-address", "127.0.0.1", "--monitoring-port", str(port))
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
               timeout=30, what="pilot ready")
    return f"127.0.0.1:{xds}"


def main() -> int:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    starts = int(os.environ.get("BENCH_STARTS", "50"))
    work = Path(tempfile.mkdtemp(prefix="mzb-", dir="/tmp"))
    group = ProcessGroup(work)
    try:
        nats = start_nats(group, work / "nats")
        signing_results = [signing.measure(group, nats.url, work, key_type, seconds=seconds, concurrency=16)
                           for key_type in ("ec-p256", "rsa-2048")]
        pilot = _pilot(group, nats.url)
        citadel = start_citadel(group, nats.url, work / "citadel-startup", "--log-level", "info")
        (work / "startup").mkdir()
        startup_results = startup.measure(group, citadel, pilot, work / "startup", work, starts=starts)
    except BaseException:
        print(group.logs()[-5000:], file=sys.stderr)
        raise
    finally:
        group.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "csr_signing": signing_results,
        "time_to_envoy_cert": startup_results,
        "goals": {"grpc_vs_raw": GOAL_RATIO, "time_to_envoy_cert_p50_ms": GOAL_STARTUP_MS,
                  "time_to_envoy_cert_p99_ms": GOAL_STARTUP_MS},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    print(f"{'figure':58} {'result':>12} {'goal':>12}")
    for r in signing_results:
        name = r["key_type"]
        print(f"{'raw cryptography signing, ' + name + ' (per s)':58} {r['raw_cryptography_per_s']:>12}")
        print(f"{'in-process CA incl. CSR checks, ' + name + ' (per s)':58} {r['in_process_ca_per_s']:>12}")
        print(f"{'gRPC CreateCertificate, ' + name + ' (per s)':58} {r['grpc_per_s']:>12}")
        verdict = "met" if r["grpc_vs_raw"] >= GOAL_RATIO else "missed"
        print(f"{'gRPC / raw, ' + name:58} {r['grpc_vs_raw']:>12} {'>= 0.70 ' + verdict:>12}")
        print(f"{'citadel CPU per CSR over gRPC, ' + name + ' (us)':58} {r['citadel_cpu_us_per_csr']:>12}")
        print(f"{'one core of citadel / raw, ' + name:58} {r['citadel_per_core_vs_raw']:>12}")
    for label, key in (("from process spawn", "from_process_spawn_ms"), ("from agent run()", "from_agent_run_ms")):
        for q in ("p50", "p99"):
            value = startup_results[key][q]
            verdict = "met" if value < GOAL_STARTUP_MS else "missed"
            print(f"{f'agent start -> Envoy holds cert, {label}, {q} (ms)':58} {value:>12} "
                  f"{'< 200 ' + verdict:>12}")
    breakdown = startup_results["agent_run_to_agent_cert_ms"]
    print(f"{'  of which agent run() -> agent holds cert, p50 / p99 (ms)':58} "
          f"{breakdown['p50']:>5} / {breakdown['p99']}")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
