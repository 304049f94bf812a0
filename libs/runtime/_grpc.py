"""Serving a gRPC server under a service's supervisor: bound, started, and stopped with a
grace period when the service stops."""

from __future__ import annotations

import grpc
import structlog

from libs.runtime._supervisor import Supervisor

log = structlog.get_logger(__name__)


async def serve_grpc(supervisor: Supervisor, server: grpc.aio.Server, address: str, port: int, *, name: str,
                     grace_s: float = 1.0, credentials: grpc.ServerCredentials | None = None) -> int:
    """Bind `server` to `address:port` (0: any free port; over TLS with `credentials`),
    start it, and have `supervisor` stop it on shutdown; the bound port."""
    target = f"{address}:{port}"
    bound = server.add_secure_port(target, credentials) if credentials else server.add_insecure_port(target)
    await server.start()
    log.info(f"{name} serving", address=address, port=bound)

    async def stop() -> None:
        await server.stop(grace=grace_s)

    supervisor.on_stop(name, stop)
    return bound
