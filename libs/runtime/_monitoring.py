"""The monitoring HTTP server each service runs: /healthz, /readyz, /metrics.

Built on FastAPI and uvicorn; a service may mount extra routes (pilot's /debug/*).
uvicorn's own signal handling is switched off: the service's Supervisor owns signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from libs.runtime._readiness import Readiness


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MonitoringServer:
    """Serves health, readiness and Prometheus metrics on `host:port`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        readiness: Readiness,
        registry: CollectorRegistry,
        routers: tuple[APIRouter, ...] = (),
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.readiness = readiness
        self.registry = registry
        self.app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        self.app.add_api_route("/healthz", self._healthz, methods=["GET"])
        self.app.add_api_route("/readyz", self._readyz, methods=["GET"])
        self.app.add_api_route("/metrics", self._metrics, methods=["GET"])
        for router in routers:
            self.app.include_router(router)
        self._config = uvicorn.Config(self.app, host=host, port=port, log_config=None,
                                      access_log=False, lifespan="off", ssl_certfile=ssl_certfile,
                                      ssl_keyfile=ssl_keyfile)
        self._server = _Server(self._config)
        self._started = asyncio.Event()
        self.bound_port: int | None = None

    async def _healthz(self) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    async def _readyz(self) -> JSONResponse:
        pending = self.readiness.pending()
        return JSONResponse({"ready": not pending, "pending": pending}, status_code=200 if not pending else 503)

    async def _metrics(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

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
        self._server.should_exit = True
