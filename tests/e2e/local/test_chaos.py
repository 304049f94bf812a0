"""The control plane under faults, as Bookinfo's readers see it: three clients read the
product page without pause while each control-plane process is killed (SIGKILL) in turn,
and pilot with NATS together; the local mesh restarts each, and a routing change applied
after every fault takes effect.  Not one request may fail."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.harness.local_mesh import LocalMesh, reviews_version
from tests.harness.waiting import wait_until
from tools.localmesh.state import alive

pytestmark = pytest.mark.e2e

FAULTS = (("pilot",), ("nats",), ("galley",), ("citadel",), ("policy",), ("telemetry",), ("pilot", "nats"))


class Readers:
    """Clients reading the product page back to back until stopped; every answer counted."""

    def __init__(self, url: str, clients: int = 3) -> None:
        self.url = url
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, name=f"reader-{i}", daemon=True)
                         for i in range(clients)]

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)

    def _read(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.url)
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.answers[outcome] += 1
                    if outcome != "200":
                        self.failures.append(outcome)

    def total(self) -> int:
        with self._lock:
            return sum(self.answers.values())


def route_reviews_to(version: str, directory: Path) -> Path:
    path = directory / f"reviews-{version}.yaml"
    path.write_text(f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: {version}}}}}]}}]
""")
    return path


def kill(mesh: LocalMesh, names: tuple[str, ...]) -> dict[str, int]:
    pids = {p.name: p.pid for p in mesh.state().processes if p.name in names and p.pid}
    assert set(pids) == set(names), f"not running: {set(names) - set(pids)}"
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    return pids


def restarted(mesh: LocalMesh, killed: dict[str, int]) -> bool:
    now = {p.name: p.pid for p in mesh.state().processes}
    return all(now.get(name) not in (None, pid) and alive(now[name]) for name, pid in killed.items())


def test_killing_each_control_plane_part_fails_no_request_and_loses_no_config(bookinfo: LocalMesh,
                                                                              tmp_path: Path) -> None:
    bookinfo.apply(route_reviews_to("v1", tmp_path))
    with Readers(f"{bookinfo.ingress}/productpage") as readers:
        wait_until(lambda: readers.total() >= 10, timeout=30, what="the readers to get going")
        for index, fault in enumerate(FAULTS):
            killed = kill(bookinfo, fault)
            wait_until(lambda k=killed: restarted(bookinfo, k), timeout=60,  # type: ignore[misc]
                       what=f"the local mesh to restart {', '.join(fault)}")
            version = ("v2", "v3")[index % 2]
            # The first apply after a restart may meet galley or NATS not yet back: retried.
            wait_until(lambda v=version: _applied(bookinfo, route_reviews_to(v, tmp_path)), timeout=60,  # type: ignore[misc]
                       what=f"the change to reviews {version} after killing {', '.join(fault)} to be accepted")
            wait_until(lambda v=version: reviews_version(bookinfo.productpage()[1]) == v, timeout=30,  # type: ignore[misc]
                       what=f"pages from reviews {version} after killing {', '.join(fault)}")
    assert readers.failures == [], f"{len(readers.failures)} of {readers.total()} requests failed: " \
                                   f"{Counter(readers.failures).most_common(5)}"
    bookinfo.delete(route_reviews_to("v1", tmp_path))


def _applied(mesh: LocalMesh, path: Path) -> bool:
    try:
        mesh.apply(path)
    except AssertionError:
        return False
    return True
