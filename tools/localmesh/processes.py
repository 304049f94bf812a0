"""Child processes of the local mesh: started, checked for readiness, restarted with
backoff when they crash (the services' own `Backoff`), and stopped (with whatever they
started) on shutdown.  A child that keeps exiting soon after each start is crash-looping;
`mizzenctl status` reports it with the last lines of its log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog

from libs.runtime import Backoff

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # An HTTP URL answering 200 once the process is ready (None: ready once started).
    ready_url: str | None = None
    # Ready when the URL's body equals this (Envoy's admin /ready says LIVE).
    ready_body: str | None = None


class ProcessFailed(RuntimeError):
    pass


# A child that ran this long before exiting is restarted at once and counted as healthy.
RESTART = Backoff(initial_s=0.5, maximum_s=30.0, reset_after_s=30.0)
# This many exits in a row, each sooner than RESTART.reset_after_s after its start.
CRASH_LOOP_EXITS = 3
# Lines of a child's log shown when it exits before it was ready (`mizzenctl up` fails).
FAILED_START_LINES = 15


def log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a child's log: its own words on why it stopped."""
    try:
        with path.open("rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            # The end of a long log is enough: a crash's traceback is in its last few KB.
            log_file.seek(max(log_file.tell() - 64 * 1024, 0))
            return log_file.read().decode(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return [f"(cannot read it: {exc})"]


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, log_dir: Path, restart: Backoff = RESTART,
                 on_exit: Callable[[ManagedProcess], None] = lambda _: None) -> None:
        self.spec = spec
        self.restart = restart
        # Called after each unexpected exit is counted (the mesh rewrites its state file).
        self.on_exit = on_exit
        self.log_path = log_dir / f"{spec.name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.last_exit: int | None = None
        self.quick_exits = 0
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def crash_looping(self) -> bool:
        """Exited soon after start `CRASH_LOOP_EXITS` times in a row, and not up long since."""
        up_for = time.monotonic() - self.started_at
        return self.quick_exits >= CRASH_LOOP_EXITS and up_for < self.restart.reset_after_s

    async def start(self) -> None:
        env = dict(os.environ)
        env.update(self.spec.env)
        with self.log_path.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                *self.spec.argv, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output, env=env,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        log.debug("process started", process=self.spec.name, pid=self.process.pid)

    async def ready(self, client: httpx.AsyncClient) -> bool:
        if self.process is None or self.process.returncode is not None:
            return False
        if self.spec.ready_url is None:
            return True
        try:
            response = await client.get(self.spec.ready_url)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        return self.spec.ready_body is None or response.text.strip() == self.spec.ready_body

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not await self.ready(client):
                if self.process is not None and self.process.returncode is not None:
                    tail = "\n".join(f"    {line}" for line in log_tail(self.log_path, FAILED_START_LINES))
                    raise ProcessFailed(f"{self.spec.name} exited with code {self.process.returncode}; "
                                        f"the end of {self.log_path}:\n{tail}")
                if time.monotonic() > deadline:
                    raise ProcessFailed(f"{self.spec.name} not ready after {timeout_s:.0f}s; see {self.log_path}")
                await asyncio.sleep(0.05)

    async def supervise(self) -> None:
        """Restart the process with backoff whenever it exits while the mesh is up."""
        delays = self.restart.delays()
        while not self._stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            ran_for = time.monotonic() - self.started_at
            delay = delays.after_run(ran_for)
            self.restarts += 1
            self.last_exit = code
            self.quick_exits = self.quick_exits + 1 if ran_for < self.restart.reset_after_s else 0
            log.warning("process exited; restarting", process=self.spec.name, code=code, retry_in_s=delay,
                        restarts=self.restarts, crash_looping=self.crash_looping, log=str(self.log_path))
            self.on_exit(self)
            await asyncio.sleep(delay)
            if not self._stopping:
                await self.start()

    async def stop(self, grace_s: float = 5.0) -> None:
        self._stopping = True
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=grace_s)
            except TimeoutError:
                log.warning("process ignored SIGTERM; killing it", process=self.spec.name)
        # Anything left in its session (an agent's Envoy) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=grace_s)
