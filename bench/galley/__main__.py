"""`python -m bench galley`: galley's throughput, memory, and offline validation time.

Goals (galley issue, 2-core machine): >= 5,000 resources/s from files to mesh-config;
`mizzenctl validate` of Istio's corpus under 1 s; RSS with 10,000 resources < 300 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.galley import corpus
from bench.procs import rss_mb, start_nats, wait_ready
from tests.harness.kv import config_size
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup

RESULTS = Path(__file__).resolve().parents[1] / "results" / "galley.json"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "istio"
TOTAL = 10_000


def _count(nats_url: str) -> int:
    return config_size(nats_url)


def publish_rate(base: Path) -> dict[str, float]:
    group = ProcessGroup(base)
    try:
        nats = start_nats(group, base / "nats")
        config = base / "config"
        config.mkdir()
        port = free_port()
        galley = group.python("galley", "services.galley", "--nats-url", nats.url, "--config-dir", str(config),
                              "--monitoring-address", "127.0.0.1", "--monitoring-port", str(port),
                              "--api-port", "0", "--poll-interval-s", "0.05", "--log-level", "warning")
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        staging = base / "staging"
        corpus.write(staging, TOTAL)
        started = time.monotonic()
        # Moving the files in is atomic per file, as an editor's save or a git checkout is.
        for path in sorted(staging.iterdir()):
            path.rename(config / path.name)
        while _count(nats.url) < TOTAL:
            if not galley.alive():
                raise RuntimeError(f"galley died: {galley.log()[-2000:]}")
            if time.monotonic() - started > 300:
                raise RuntimeError(f"galley published {_count(nats.url)} of {TOTAL} in 300 s: {galley.log()[-2000:]}")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        return {"resources": TOTAL, "seconds": round(elapsed, 3), "resources_per_s": round(TOTAL / elapsed),
                "galley_rss_mb": round(rss_mb(galley.pid), 1)}
    finally:
        group.stop_all()


def validate_corpus() -> dict[str, float]:
    if not CORPUS.is_dir():
        return {"skipped": 1}
    runs = []
    for _ in range(5):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "tools.mizzenctl", "validate", "-f", str(CORPUS)],
                       capture_output=True, check=False)
        runs.append(time.monotonic() - started)
    return {"best_s": round(min(runs), 3), "median_s": round(sorted(runs)[2], 3)}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        throughput = publish_rate(Path(tmp))
    validation = validate_corpus()
    results = {"publish": throughput, "validate_corpus": validation}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"files -> mesh-config: {throughput['resources_per_s']} resources/s   (goal >= 5000)")
    print(f"galley RSS with {TOTAL} resources: {throughput['galley_rss_mb']} MB   (goal < 300 MB)")
    print(f"mizzenctl validate of the Istio corpus: {validation.get('median_s')} s median   (goal < 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
