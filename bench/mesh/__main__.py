"""`python -m bench mesh`: `mizzenctl up -d --app bookinfo` to every proxy SYNCED, and
productpage latency direct vs through the ingress gateway and sidecars.

Goals (local mesh issue, 2-core machine): up -d to SYNCED < 10 s; latency reported.
The load comes from another process (a thread pool client in this one, while the mesh
runs in its own processes), at a fixed request rate.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.procs import wait_ready
from tests.harness.processes import ProcessGroup

RESULTS = Path(__file__).resolve().parents[1] / "results" / "mesh.json"
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "bookinfo" / "networking"
HOPS = 6
SUBNET = 79
RUNS = 3
RATE_PER_S = 20
DURATION_S = 10


def mizzenctl(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=300, check=False)


def up(state: Path) -> float:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tools.mizzenctl", "up", "-d", "--state-dir", str(state),
                             "--subnet", str(SUBNET), "--ingress-address", f"127.{SUBNET}.1.1"],
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"mizzenctl up failed: {result.stderr}")
    return time.monotonic() - started


def wait_until_v1(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pages = [httpx.get(url, timeout=10).text for _ in range(5)]
        if all('id="reviews-version">v1<' in page for page in pages):
            return
    raise RuntimeError("the mesh did not route every request to reviews v1")


def latencies(url: str) -> list[float]:
    """Requests at RATE_PER_S for DURATION_S on one keep-alive connection: the cost of the
    hops, not of TCP setup."""
    samples: list[float] = []
    lock = threading.Lock()
    with httpx.Client(timeout=10) as client:
        client.get(url)  # warm the connection and Envoy's pools
        interval = 1 / RATE_PER_S
        next_at = time.monotonic()
        end = next_at + DURATION_S
        while next_at < end:
            started = time.monotonic()
            response = client.get(url)
            elapsed = time.monotonic() - started
            if response.status_code == 200:
                with lock:
                    samples.append(elapsed)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    return samples


def plain_bookinfo(group: ProcessGroup) -> str:
    """productpage, details and reviews v1 wired to each other directly: no mesh at all."""
    base = f"127.{SUBNET}.20"
    apps = {"details": f"{base}.2", "reviews": f"{base}.3", "productpage": f"{base}.1"}
    for name, address in apps.items():
        group.python(f"plain-{name}", "samples.bookinfo", name, "--host", address, "--port", "19080",
                     "--details-url", f"http://{apps['details']}:19080",
                     "--reviews-url", f"http://{apps['reviews']}:19080", env={"HTTP_PROXY": "", "http_proxy": ""})
    for address in apps.values():
        wait_ready(f"http://{address}:19080/health")
    return f"http://{apps['productpage']}:19080/productpage"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    ups: list[float] = []
    results: dict[str, object] = {}
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            group = ProcessGroup(Path(tmp))
            try:
                ups.append(up(state))
                if run == 0:
                    # Same call graph both ways: productpage -> details and reviews v1.
                    all_v1 = SAMPLES / "virtual-service-all-v1.yaml"
                    mizzenctl(state, "apply", "-f", str(SAMPLES / "destination-rule-all.yaml"), "-f", str(all_v1))
                    meshed_url = f"http://127.{SUBNET}.1.1:8080/productpage"
                    wait_until_v1(meshed_url)
                    direct = latencies(plain_bookinfo(group))
                    meshed = latencies(meshed_url)
                    results["latency_ms"] = {
                        name: {"p50": round(percentile(s, 0.5) * 1000, 2), "p99": round(percentile(s, 0.99) * 1000, 2),
                               "samples": len(s)}
                        for name, s in (("direct_to_productpage", direct), ("through_ingress_and_sidecars", meshed))
                    }
            finally:
                group.stop_all()
                mizzenctl(state, "down")
    up_median = round(statistics.median(ups), 2)
    results["up_to_synced_s"] = {"runs": [round(u, 2) for u in ups], "median": up_median}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    latency = results["latency_ms"]
    assert isinstance(latency, dict)
    direct, meshed = latency["direct_to_productpage"], latency["through_ingress_and_sidecars"]
    # Through the mesh a page crosses 6 Envoys: the ingress gateway, productpage's inbound,
    # and for each of details and reviews the caller's outbound and the callee's inbound.
    added = meshed["p50"] - direct["p50"]
    results["added_per_hop_p50_ms"] = round(added / HOPS, 2)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"mizzenctl up -d to all SYNCED: median {up_median} s over {RUNS} runs "
          f"(goal < 10 s)")
    print(f"productpage p50/p99 without a mesh: {direct['p50']}/{direct['p99']} ms; through the ingress gateway "
          f"and sidecars (mTLS): {meshed['p50']}/{meshed['p99']} ms; added p50 {round(added, 2)} ms over "
          f"{HOPS} Envoy hops = {results['added_per_hop_p50_ms']} ms per hop   (report)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
