"""Runs Envoy as a child process: started, watched, and stopped within a grace period."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import structlog

from libs.envoy.binaries import envoy_binary

log = structlog.get_logger(__name__)


class EnvoyExited(RuntimeError):
    def __init__(self, code: int) -> None:
        super().__init__(f"envoy exited with code {code}")
        self.code = code


class EnvoyProcess:
    def __init__(self, bootstrap: Path, *, log_level: str = "warning", concurrency: int = 2,
                 grace_s: float = 5.0, log_path: Path | None = None, drain_time_s: float = 1.0) -> None:
        self.bootstrap = bootstrap
        self.log_level = log_level
        self.concurrency = concurrency
        self.drain_time_s = drain_time_s
        self.grace_s = grace_s
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        return [
            str(envoy_binary()), "-c", str(self.bootstrap),
            # Several Envoys share a host: each needs its own shared-memory base id.
            "--use-dynamic-base-id",
            "--log-level", self.log_level,
            "--concurrency", str(self.concurrency),
            "--drain-time-s", str(max(1, round(self.drain_time_s))),
            "--parent-shutdown-time-s", str(max(1, round(self.drain_time_s)) + 1),
            "--drain-strategy", "immediate",
        ]

    async def run(self) -> None:
        """Start Envoy and wait for it; an exit that nobody asked for raises EnvoyExited."""
        output = self.log_path.open("ab") if self.log_path else None
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
                start_new_session=True,
            )
            self.starts += 1
            log.info("envoy started", pid=self._process.pid, bootstrap=str(self.bootstrap))
            code = await self._process.wait()
        finally:
            if output:
                output.close()
        if not self._stopping:
            raise EnvoyExited(code)
        log.info("envoy stopped", code=code)

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.grace_s)
        except TimeoutError:
            log.warning("envoy ignored SIGTERM; killing it", pid=process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
