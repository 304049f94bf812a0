"""`mizzenctl up -d` then `down` leaves nothing running."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.local_mesh import LocalMesh
from tools.localmesh.state import alive

pytestmark = pytest.mark.e2e


def test_up_then_down_leaves_no_process(tmp_path: Path) -> None:
    mesh = LocalMesh(tmp_path / "state", subnet=78)
    started = mesh.up("--app", "none")
    try:
        assert started.returncode == 0, started.stderr
        state = mesh.state()
        pids = [p.pid for p in state.processes if p.pid]
        assert len(pids) >= 6 and all(alive(pid) for pid in pids)
        status = mesh.mizzenctl("status")
        assert "istio-ingressgateway.istio-system" in status.stdout and "SYNCED" in status.stdout
    finally:
        stopped = mesh.down()
    assert stopped.returncode == 0
    assert not any(alive(pid) for pid in pids)
    assert not (tmp_path / "state" / "mesh.json").exists()
    assert "no mesh is running" in mesh.mizzenctl("status", check=False).stdout
