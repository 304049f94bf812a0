"""Child processes that are always reaped: each in its own session, so stopping it
stops whatever it started (an agent's Envoy), with SIGKILL after a grace period."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# How long `stop` waits after SIGTERM before SIGKILL: longer than the services' own
# shutdown grace (5 s by default), so a slow but clean stop on a loaded machine is not
# turned into a kill, and a test asserting a clean exit sees what the service did.
STOP_GRACE_S = 10.0


class Process:
    def __init__(self, name: str, argv: Sequence[str], *, log_dir: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        merged = dict(os.environ)
        merged.update(env or {})
        self._log = self.log_path.open("ab")
        self._terminated = False
        self.popen = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=merged, cwd=cwd, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self) -> None:
        """SIGTERM to the process's group, once, without waiting (`stop` waits).  A second
        SIGTERM would meet a process already shutting down: one that has let go of its
        handler by then dies of it (exit -15), and a clean stop reads as a crash."""
        if self.popen.poll() is None and not self._terminated:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        if self.popen.poll() is None:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace_s)
        # Whatever is left of the process group goes, even if the leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace_s)
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


class ProcessGroup:
    """Every process a test started; `stop_all` runs on teardown, pass or fail."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []
        # Servers the others talk to while they shut down (NATS, Redis): stopped last.
        self._foundations: set[Process] = set()

    def start(self, name: str, argv: Sequence[str], *, foundation: bool = False, **kwargs: object) -> Process:
        process = Process(name, argv, log_dir=self.log_dir, **kwargs)  # type: ignore[arg-type]
        self.processes.append(process)
        if foundation:
            self._foundations.add(process)
        return process

    def python(self, name: str, module: str, *args: str, **kwargs: Any) -> Process:
        return self.start(name, [sys.executable, "-m", module, *args], **kwargs)

    def stop_all(self) -> None:
        """Every process stopped: the services all at once (an Envoy takes ~0.4 s to exit, and
        a module's mesh has a dozen), then the foundations they may still be talking to."""
        for wave in ([p for p in self.processes if p not in self._foundations],
                     [p for p in self.processes if p in self._foundations]):
            for process in reversed(wave):
                process.terminate()
            for process in reversed(wave):
                process.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} (pid {p.pid}) =====\n{p.log()[-6000:]}" for p in self.processes)
