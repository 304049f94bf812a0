"""`python -m bench faults`: how soon config takes effect after a control-plane part dies
and comes back, under Bookinfo traffic.

Goal (fault issue, 2-core machine): config applied after the killed part is back takes
effect within a second; no request fails.  For each fault of the chaos test (SIGKILL of
pilot, nats-server, galley, citadel, policy, telemetry, then pilot and NATS together),
three readers fetch the product page through the ingress gateway without pause, and:
- back: from the kill until the local mesh has restarted every killed process and every
  control-plane service answers /readyz again;
- apply: `mizzenctl apply` of a VirtualService that moves reviews to another subset, from
  that moment (retried while galley or NATS still refuse it, each attempt counted);
- effect: from the apply's return (galley has stored the change) to the first product
  page served by the new subset, polled back to back.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.mesh.__main__ import SAMPLES, mizzenctl
from tests.harness.local_mesh import reviews_route, reviews_version
from tests.harness.traffic import Load
from tools.localmesh.state import MeshState, alive

RESULTS = Path(__file__).resolve().parents[1] / "results" / "faults.json"
FAULTS = (("pilot",), ("nats",), ("galley",), ("citadel",), ("policy",), ("telemetry",), ("pilot", "nats"))
SUBNET = 83
GOAL_S = 1.0
TIMEOUT_S = 90.0


@dataclass
class Recovery:
    fault: str
    back_s: float
    apply_s: float
    apply_attempts: int
    effect_s: float
    failed_requests: int


def until(what: str, check: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> float:
    """Poll `check` back to back until it is true; the moment it was."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
    raise RuntimeError(f"timed out waiting for {what}")


def state_of(state_dir: Path) -> MeshState:
    state = MeshState.read(state_dir)
    if state is None:
        raise RuntimeError("the mesh is not running")
    return state


def all_ready(state: MeshState) -> bool:
    try:
        return all(httpx.get(f"{url}/readyz", timeout=1).status_code == 200 for url in state.monitoring.values())
    except httpx.HTTPError:
        return False


def restarted(state_dir: Path, killed: dict[str, int]) -> bool:
    now = {p.name: p.pid for p in state_of(state_dir).processes}
    return all(now.get(name) not in (None, pid) and alive(now[name]) for name, pid in killed.items())


def serves(url: str, version: str) -> bool:
    try:
        return reviews_version(httpx.get(url, timeout=5).text) == version
    except httpx.HTTPError:
        return False


def recover(state_dir: Path, work: Path, fault: tuple[str, ...], version: str, readers: Load) -> Recovery:
    failed_before = len(readers.failures)
    pids = {p.name: p.pid for p in state_of(state_dir).processes if p.name in fault and p.pid}
    killed_at = time.monotonic()
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    back = until(f"{', '.join(fault)} to be back and ready",
                 lambda: restarted(state_dir, pids) and all_ready(state_of(state_dir)))
    route = reviews_route(version, work)
    attempts = 0
    while True:
        attempts += 1
        if mizzenctl(state_dir, "apply", "-f", str(route)).returncode == 0:
            break
        if time.monotonic() - back > TIMEOUT_S:
            raise RuntimeError(f"apply after killing {', '.join(fault)} kept failing")
    applied = time.monotonic()
    url = f"http://127.{SUBNET}.1.1:8080/productpage"
    effect = until(f"reviews {version} after killing {', '.join(fault)}", lambda: serves(url, version))
    return Recovery(fault="+".join(fault), back_s=round(back - killed_at, 2), apply_s=round(applied - back, 2),
                    apply_attempts=attempts, effect_s=round(effect - applied, 3),
                    failed_requests=len(readers.failures) - failed_before)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mzb-faults-") as tmp:
        work = Path(tmp)
        state_dir = work / "state"
        up = mizzenctl(state_dir, "up", "-d", "--subnet", str(SUBNET), "--ingress-address", f"127.{SUBNET}.1.1")
        if up.returncode != 0:
            raise RuntimeError(f"mizzenctl up failed: {up.stderr}")
        try:
            mizzenctl(state_dir, "apply", "-f", str(SAMPLES / "destination-rule-all.yaml"),
                      "-f", str(reviews_route("v1", work)))
            url = f"http://127.{SUBNET}.1.1:8080/productpage"
            until("reviews v1", lambda: serves(url, "v1"))
            recoveries: list[Recovery] = []
            with Load(lambda client: client.get(url)) as readers:
                until("the readers to get going", lambda: readers.total() >= 10)
                for index, fault in enumerate(FAULTS):
                    recoveries.append(recover(state_dir, work, fault, ("v2", "v3")[index % 2], readers))
            summary = readers.summary()
        finally:
            mizzenctl(state_dir, "down")
    worst = max(r.effect_s for r in recoveries)
    results = {"goal_effect_s": GOAL_S, "recoveries": [asdict(r) for r in recoveries],
               "worst_effect_s": worst, "readers": summary}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for r in recoveries:
        print(f"{r.fault:>10}: back after {r.back_s} s; apply accepted {r.apply_s} s later "
              f"({r.apply_attempts} attempt(s)); in effect {r.effect_s} s after; {r.failed_requests} failed requests")
    met = "met" if worst < GOAL_S else "missed"
    print(f"config applied after a part is back takes effect within {worst} s at worst (goal < {GOAL_S} s: {met}); "
          f"readers: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
