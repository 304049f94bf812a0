"""`mizzenctl up -d` then `down` leaves nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_mizzenctl_finds_the_current_mesh_from_an_unrelated_directory(local_mesh: LocalMesh, tmp_path: Path) -> None:
    local_mesh.mizzenctl("context", "add", "e2e", "--use")  # the harness adds the mesh's --state-dir
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "vs.yaml").write_text("""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: context-check, namespace: default}
spec:
  hosts: [context-check.example.com]
  http: [{route: [{destination: {host: details}}]}]
""")
    environ = {key: value for key, value in os.environ.items() if key != "MIZZEN_STATE_DIR"}

    def mizzenctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args], cwd=elsewhere, env=environ,
                              capture_output=True, text=True, timeout=60, check=False)

    applied = mizzenctl("apply", "-f", "vs.yaml")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "VirtualService default/context-check created"
    try:
        listed = mizzenctl("get", "virtualservices")
        assert "context-check" in listed.stdout
        assert "e2e" in mizzenctl("context").stdout
    finally:
        assert mizzenctl("delete", "-f", "vs.yaml").returncode == 0
