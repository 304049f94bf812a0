"""Supervised background tasks: named, awaited on shutdown, their crashes never silent.

Every long-lived task of a service runs under one `Supervisor`.  A task that raises is
logged with its traceback and then either restarted with backoff (when started with
`restart=Backoff(...)`) or treated as fatal: the supervisor stops the service and
`wait()` raises `FatalServiceError`.  Shutdown runs the registered stop callbacks
(newest first, e.g. "stop accepting gRPC streams"), then cancels what is left and waits
at most `grace_s` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from libs.runtime._errors import FatalServiceError

log = structlog.get_logger(__name__)

TaskFactory = Callable[[], Awaitable[Any]]
StopCallback = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Backoff:
    """Restart policy: wait `initial_s`, doubling up to `maximum_s`; a run that lasted
    longer than `reset_after_s` starts the next wait from `initial_s` again."""

    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0
    reset_after_s: float = 60.0

    def delays(self) -> _Delays:
        return _Delays(self)


class _Delays:
    def __init__(self, policy: Backoff) -> None:
        self._policy = policy
        self._next = policy.initial_s

    def after_run(self, ran_for_s: float) -> float:
        if ran_for_s >= self._policy.reset_after_s:
            self._next = self._policy.initial_s
        delay = self._next
        self._next = min(self._next * self._policy.factor, self._policy.maximum_s)
        return delay


class Supervisor:
    """Owns a service's background tasks from start to a bounded shutdown."""

    def __init__(self, service: str, *, grace_s: float = 10.0) -> None:
        self.service = service
        self.grace_s = grace_s
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._stop_callbacks: list[tuple[str, StopCallback]] = []
        self._stop = asyncio.Event()
        self._failure: FatalServiceError | None = None
        self._stop_reason = ""

    # -- starting ---------------------------------------------------------------------

    def start(self, name: str, factory: TaskFactory, *, restart: Backoff | None = None) -> asyncio.Task[Any]:
        """Run `factory()` as a named task.  With `restart`, a crash is retried with backoff."""
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"task {name!r} is already running")
        body = self._restarting(name, factory, restart) if restart else self._once(name, factory)
        task = asyncio.get_running_loop().create_task(body, name=f"{self.service}:{name}")
        self._tasks[name] = task
        return task

    def on_stop(self, name: str, callback: StopCallback) -> None:
        """Register a graceful-stop step, run (newest first) before tasks are cancelled."""
        self._stop_callbacks.append((name, callback))

    async def _once(self, name: str, factory: TaskFactory) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("task failed", task=name, exc_info=True)
            self._fail(name, exc)
            return
        if not self._stop.is_set():
            log.info("task finished", task=name)

    async def _restarting(self, name: str, factory: TaskFactory, policy: Backoff) -> None:
        delays = policy.delays()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = delays.after_run(time.monotonic() - started)
                log.warning("task failed; restarting", task=name, error=repr(exc),
                            retry_in_s=delay, exc_info=True)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)

    # -- stopping ---------------------------------------------------------------------

    def _fail(self, name: str, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = FatalServiceError(name, exc)
        self.request_stop(f"task {name} failed")

    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            log.info("stopping", reason=reason)
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def failure(self) -> FatalServiceError | None:
        """The first task failure that stopped the supervisor, if one did."""
        return self._failure

    async def stopped(self) -> None:
        """Wait until a stop has been requested (signal, failure or `request_stop`)."""
        await self._stop.wait()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")

    def remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    async def wait(self) -> None:
        """Block until stop is requested, shut down, and raise if a task failed."""
        await self._stop.wait()
        await self.shutdown()
        if self._failure is not None:
            raise self._failure

    async def shutdown(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + self.grace_s
        for name, callback in reversed(self._stop_callbacks):
            remaining = max(deadline - time.monotonic(), 0.01)
            try:
                await asyncio.wait_for(callback(), timeout=remaining)
            except Exception:
                log.warning("stop step failed", step=name, exc_info=True)
        self._stop_callbacks.clear()
        pending = [t for t in self._tasks.values() if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            remaining = max(deadline - time.monotonic(), 0.01)
            _, still = await asyncio.wait(pending, timeout=remaining)
            for task in still:
                log.error("task ignored cancellation within the grace period", task=task.get_name())

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()
