"""The local mesh's own supervision of its children, with real child processes: a child
that keeps exiting is restarted with backoff and reported as crash-looping by
`mizzenctl status`, with the end of its log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from libs.runtime import Backoff
from tools.localmesh.processes import CRASH_LOOP_EXITS, ManagedProcess, ProcessFailed, ProcessSpec
from tools.localmesh.state import MeshState, ProcessState

pytestmark = pytest.mark.integration

FAST = Backoff(initial_s=0.05, maximum_s=0.2, reset_after_s=30.0)


async def crash(tmp_path: Path, exits: int) -> ManagedProcess:
    """A child that exits at once, supervised until it has exited `exits` times."""
    enough = asyncio.Event()
    script = "import sys; print('reading config', flush=True); sys.exit('fatal: no such bucket mesh-config')"
    process = ManagedProcess(ProcessSpec("crasher", [sys.executable, "-c", script]), tmp_path, restart=FAST,
                             on_exit=lambda p: enough.set() if p.restarts >= exits else None)
    await process.start()
    supervising = asyncio.create_task(process.supervise())
    try:
        await asyncio.wait_for(enough.wait(), timeout=30)
    finally:
        await process.stop()
        await asyncio.wait_for(supervising, timeout=5)
    return process


def test_a_child_that_keeps_exiting_is_restarted_and_marked_crash_looping(tmp_path: Path) -> None:
    process = asyncio.run(crash(tmp_path, CRASH_LOOP_EXITS))
    assert process.last_exit == 1
    assert process.crash_looping
    assert process.log_path.read_text().count("fatal: no such bucket mesh-config") >= CRASH_LOOP_EXITS


def test_a_child_restarted_once_is_not_crash_looping(tmp_path: Path) -> None:
    process = asyncio.run(crash(tmp_path, 1))
    assert process.restarts == 1 and not process.crash_looping


def test_status_names_the_crash_looping_child_and_shows_its_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "pilot.log"
    log.parent.mkdir()
    log.write_text("".join(f"line {i}\n" for i in range(40)) + "fatal: cannot bind 127.0.0.1:15010\n")
    # The mesh's pid must be alive for status to read the state: this test process is.
    MeshState(pid=os.getpid(), status="ready", ingress="http://127.0.0.1:1", galley="http://127.0.0.1:1",
              pilot="http://127.0.0.1:1",
              processes=[ProcessState("pilot", None, str(log), restarts=5, last_exit=1, crash_looping=True),
                         ProcessState("galley", os.getpid(), str(tmp_path / "galley.log"))]).write(tmp_path)
    shown = subprocess.run([sys.executable, "-m", "tools.mizzenctl", "status", "--state-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 1
    rows: dict[str, list[str]] = {}
    for line in shown.stdout.splitlines():  # the process table comes first
        if line.startswith(("pilot ", "galley ")):
            rows.setdefault(line.split()[0], line.split())
    assert rows["pilot"][1:] == ["-", "CRASHLOOP", "5", "1"]
    assert rows["galley"][2] == "running"
    assert f"pilot keeps crashing (last exit 1, 5 restarts); last lines of {log}:" in shown.stdout
    assert "  fatal: cannot bind 127.0.0.1:15010" in shown.stdout
    assert "line 30" not in shown.stdout and "line 31" in shown.stdout


def test_a_child_that_dies_before_it_is_ready_fails_the_start_with_the_end_of_its_log(tmp_path: Path) -> None:
    script = "import sys; print('binding 127.77.10.2:15020', flush=True); sys.exit('fatal: address already in use')"
    process = ManagedProcess(ProcessSpec("details-v1-proxy", [sys.executable, "-c", script],
                                         ready_url="http://127.0.0.1:9/never"), tmp_path)

    async def start() -> None:
        await process.start()
        await process.wait_ready(timeout_s=30)

    with pytest.raises(ProcessFailed) as failed:
        asyncio.run(start())
    assert "details-v1-proxy exited with code 1" in str(failed.value)
    assert "    fatal: address already in use" in str(failed.value)
