"""The monitoring HTTP server each service runs: /healthz, /readyz, /metrics, /version.

uvicorn serves a small ASGI app for the probes and the build info (`mizzenctl version`); a
service that needs more routes (pilot's /debug/*, galley's API) passes FastAPI routers,
mounted behind the probes, and the HTTP status of each of its error classes
(`error_statuses`): the routers raise the service's own errors, and this edge is the one
place they become responses.
FastAPI is imported only then: it costs a fifth of a second at start, and the agent
beside every Envoy should not pay it; it passes a plain ASGI app (`app`) for its
/app-health/* paths instead.
uvicorn's own signal handling is switched off: the service's Supervisor owns signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from libs.runtime._readiness import Readiness
from libs.runtime._version import build_info

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.requests import Request
    from starlette.responses import Response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn wakes ten times a second to notice `should_exit`.  A service runs several
        # of these servers and is idle most of the time, where those wake-ups were most of
        # its CPU: wake once a second (the Date header's resolution) and at once on `exit()`.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit.wait()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, chunks: Iterable[bytes], content_type: str) -> None:
    """A body made piece by piece: a large exposition is never held whole."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type.encode())]})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class _ProbesApp:
    """/healthz, /readyz, /metrics and /version; everything else goes to `fallback` (or 404)."""

    def __init__(self, readiness: Readiness, registry: CollectorRegistry, fallback: Asgi | None,
                 metrics: Callable[[], Iterable[bytes]] | None = None) -> None:
        self.readiness = readiness
        self.registry = registry
        self.fallback = fallback
        self.metrics = metrics or (lambda: [generate_latest(self.registry)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            if path == "/healthz":
                await _respond(send, 200, b"ok\n", "text/plain; charset=utf-8")
                return
            if path == "/readyz":
                pending = self.readiness.pending()
                body = json.dumps({"ready": not pending, "pending": pending}).encode()
                await _respond(send, 503 if pending else 200, body, "application/json")
                return
            if path == "/metrics":
                await _stream(send, self.metrics(), CONTENT_TYPE_LATEST)
                return
            if path == "/version":
                await _respond(send, 200, json.dumps(build_info()).encode(), "application/json")
                return
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif scope["type"] == "http":
            await _respond(send, 404, b"not found\n", "text/plain; charset=utf-8")


def error_response(statuses: Mapping[type[Exception], int], exc: Exception) -> tuple[int, Any]:
    """(status, detail) for a service error: the status of the nearest class in `statuses`
    (as `except` would match it, 500 when none is), and the error's `detail` when it carries
    structured detail, else its message."""
    status = next((statuses[k] for k in type(exc).__mro__ if k in statuses), 500)
    return status, getattr(exc, "detail", None) or str(exc)


def _error_handler(statuses: Mapping[type[Exception], int]) -> Callable[[Request, Exception], Awaitable[Response]]:
    from fastapi.responses import JSONResponse

    async def handle(_request: Request, exc: Exception) -> Response:
        status, detail = error_response(statuses, exc)
        # FastAPI's own shape for HTTPException, so clients read one kind of error body.
        return JSONResponse({"detail": detail}, status_code=status)

    return handle


def _roots(classes: Iterable[type[Exception]]) -> list[type[Exception]]:
    """The classes none of the others derive from: one handler each covers the rest."""
    listed = list(classes)
    return [k for k in listed if not any(k is not other and issubclass(k, other) for other in listed)]


class MonitoringServer:
    """Serves health, readiness, Prometheus metrics and the build info on `host:port`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        readiness: Readiness,
        registry: CollectorRegistry,
        routers: tuple[APIRouter, ...] = (),
        error_statuses: Mapping[type[Exception], int] | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        metrics: Callable[[], Iterable[bytes]] | None = None,
        app: Asgi | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`metrics`: the pieces of what /metrics answers, when not `registry` in Prometheus'
        text format.  `app`: an ASGI app answering every other path (not with `routers`).
        `error_statuses`: the routers' error classes and the HTTP status each answers with
        (a subclass takes its nearest listed base's).
        `ssl_context`: TLS from a context the caller keeps (and may re-key) rather than files."""
        if routers and app is not None:
            raise ValueError("pass routers or app, not both")
        self.readiness = readiness
        self.registry = registry
        fallback: Asgi | None = app
        if routers:
            from fastapi import FastAPI

            api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
            for router in routers:
                api.include_router(router)
            if error_statuses:
                handler = _error_handler(error_statuses)
                for root in _roots(error_statuses):
                    api.add_exception_handler(root, handler)
            fallback = api
        self.app = _ProbesApp(readiness, registry, fallback, metrics)
        self._config = uvicorn.Config(self.app, host=host, port=port, log_config=None, access_log=False,
                                      lifespan="off", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                                      ssl_context_factory=None if ssl_context is None
                                      else lambda _config, _default: ssl_context)
        self._server = _Server(self._config)
        self._started = asyncio.Event()
        self.bound_port: int | None = None

    async def serve(self) -> None:
        """Run until `stop()`; binds before returning control to the loop."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._config.host, self._config.port))
        self.bound_port = sock.getsockname()[1]
        self._started.set()
        await self._server.serve(sockets=[sock])

    async def started(self) -> int:
        await self._started.wait()
        assert self.bound_port is not None
        return self.bound_port

    async def stop(self) -> None:
        self._server.exit()
