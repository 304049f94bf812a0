"""Pieces every service shares: a request log and a uvicorn runner that stops cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Request, Response

# How long in-flight requests may finish after SIGTERM.  Shorter than the test harness's and
# Kubernetes' grace periods, so a stop is clean rather than a SIGKILL.
GRACEFUL_SHUTDOWN_S = 2


def add_request_log(app: FastAPI, service: str) -> None:
    """Log one line per request, with the ids that let a reader follow it across services."""
    access = logging.getLogger(f"bookinfo.{service}")

    @app.middleware("http")
    async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.monotonic()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            access.info(
                "%s %s %d %.1fms request_id=%s end_user=%s traceparent=%s",
                request.method, request.url.path, status, (time.monotonic() - started) * 1000,
                request.headers.get("x-request-id", "-"), request.headers.get("end-user", "-"),
                request.headers.get("traceparent", "-"),
            )


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the stop signal after shutdown.

    uvicorn re-raises a captured SIGTERM once it has shut down, so the process dies *by* the
    signal (exit status -15).  A Bookinfo service that drained and stopped should exit 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handle_exit)
        try:
            yield
        finally:
            # Stopped: ignore further stop signals (supervisors repeat them) for the little that is
            # left.  Python resets its own handlers to the default, fatal action while the
            # interpreter finalizes, but leaves SIG_IGN alone.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout, level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def serve(app: FastAPI, host: str, port: int) -> int:
    """Run `app` until SIGTERM or SIGINT; returns the process exit status."""
    config = uvicorn.Config(
        app, host=host, port=port,
        # Our own request log replaces uvicorn's access log; uvicorn's other messages go to ours.
        log_config=None, access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config)
    server.run()
    # `started` stays False when the port could not be bound.
    return 0 if server.started else 1
