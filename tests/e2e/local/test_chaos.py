"""The control plane under faults, as Bookinfo's readers see it: three clients read the
product page without pause while each control-plane process is killed (SIGKILL) in turn,
and pilot with NATS together; the local mesh restarts each, and a routing change applied
after every fault takes effect.  Not one request may fail."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.harness.local_mesh import LocalMesh, reviews_route, reviews_version
from tests.harness.traffic import Load
from tests.harness.waiting import wait_until
from tools.localmesh.state import alive

pytestmark = pytest.mark.e2e

FAULTS = (("pilot",), ("nats",), ("galley",), ("citadel",), ("policy",), ("telemetry",), ("pilot", "nats"))


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
    bookinfo.apply(reviews_route("v1", tmp_path))
    with Load(lambda client: client.get(f"{bookinfo.ingress}/productpage")) as readers:
        wait_until(lambda: readers.total() >= 10, timeout=30, what="the readers to get going")
        for index, fault in enumerate(FAULTS):
            killed = kill(bookinfo, fault)
            wait_until(lambda k=killed: restarted(bookinfo, k), timeout=60,  # type: ignore[misc]
                       what=f"the local mesh to restart {', '.join(fault)}")
            version = ("v2", "v3")[index % 2]
            # The first apply after a restart may meet galley or NATS not yet back: retried.
            wait_until(lambda v=version: _applied(bookinfo, reviews_route(v, tmp_path)), timeout=60,  # type: ignore[misc]
                       what=f"the change to reviews {version} after killing {', '.join(fault)} to be accepted")
            wait_until(lambda v=version: reviews_version(bookinfo.productpage()[1]) == v, timeout=30,  # type: ignore[misc]
                       what=f"pages from reviews {version} after killing {', '.join(fault)}")
    assert readers.failures == [], readers.summary()
    bookinfo.delete(reviews_route("v1", tmp_path))


def _applied(mesh: LocalMesh, path: Path) -> bool:
    try:
        mesh.apply(path)
    except AssertionError:
        return False
    return True
