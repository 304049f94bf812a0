"""The SDS server Envoy reads its certificates from: `envoy.service.secret.v3` StreamSecrets
(state of the world) on a Unix socket in the agent's state dir, readable by this user only.

Each stream runs two scoped tasks: one reads Envoy's requests into a queue, the other
answers them and pushes changed secrets; the stream ends when Envoy closes it.  Before a
request is answered the store learns the names it asks for (`SecretStore.want`), so that
credentials and certificate files are looked up on demand; a name that cannot be served is
simply left out of the answers, which keeps Envoy waiting for it rather than rejecting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import structlog
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.agent.errors import ConfigurationError
from services.agent.sds_secrets import SecretStore
from services.agent.sds_stream import SdsStream

log = structlog.get_logger(__name__)

# sockaddr_un.sun_path is 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107
_CHANGED = object()
_CLOSED = object()


class SdsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pushes = Counter("agent_sds_pushes", "SDS responses sent to Envoy", registry=registry)
        self.acks = Counter("agent_sds_acks", "SDS responses Envoy ACKed", registry=registry)
        self.nacks = Counter("agent_sds_nacks", "SDS responses Envoy rejected", registry=registry)
        self.streams = Gauge("agent_sds_streams", "open SDS streams", registry=registry)


class SdsService(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(self, store: SecretStore, metrics: SdsMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self._ids = itertools.count(1)

    async def StreamSecrets(self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
                            context: grpc.aio.ServicerContext) -> None:
        stream = SdsStream(f"sds-{next(self._ids)}")
        events: asyncio.Queue[Any] = asyncio.Queue()

        def changed() -> None:
            events.put_nowait(_CHANGED)

        self.store.subscribe(changed)
        self.metrics.streams.inc()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read(request_iterator, events), name=f"{stream.id}-read")
                tasks.create_task(self._answer(stream, events, context), name=f"{stream.id}-answer")
        finally:
            self.store.unsubscribe(changed)
            self.store.release(stream.id)
            self.metrics.streams.dec()
            log.debug("SDS stream closed", stream=stream.id, node=stream.node)

    async def _read(self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], events: asyncio.Queue[Any]) -> None:
        try:
            async for request in requests:
                events.put_nowait(request)
        finally:
            events.put_nowait(_CLOSED)

    async def _answer(self, stream: SdsStream, events: asyncio.Queue[Any], context: grpc.aio.ServicerContext) -> None:
        while True:
            event = await events.get()
            if event is _CLOSED:
                return
            if event is _CHANGED:
                response = stream.on_change(self.store.resources)
            else:
                acks, nacked = stream.acks, stream.last_nack
                # Resolve what can be at once, so that the answer carries it.
                self.store.want(stream.id, frozenset(event.resource_names))
                response = stream.on_request(event, self.store.resources)
                if stream.acks > acks:
                    self.metrics.acks.inc()
                    self.store.acked(stream.id, stream.acked_resources)
                if stream.last_nack is not nacked:
                    self.metrics.nacks.inc()
            if response is not None:
                await context.write(response)
                self.metrics.pushes.inc()

    async def FetchSecrets(self, request: discovery_pb2.DiscoveryRequest,
                           context: grpc.aio.ServicerContext) -> discovery_pb2.DiscoveryResponse:
        stream = SdsStream(f"fetch-{next(self._ids)}")
        self.store.want(stream.id, frozenset(request.resource_names))
        try:
            response = stream.on_request(request, self.store.resources)
        finally:
            self.store.release(stream.id)
        if response is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the requested secrets are not available yet")
        return response


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path.absolute())) > MAX_SOCKET_PATH:
        raise ConfigurationError(f"SDS socket path {path.absolute()} is longer than the {MAX_SOCKET_PATH} bytes a "
                                 "Unix socket allows; set sds_socket or a shorter state_dir")


class SdsServer:
    def __init__(self, store: SecretStore, socket_path: Path, metrics: SdsMetrics) -> None:
        check_socket_path(socket_path)
        self.socket_path = socket_path.absolute()
        self._server = grpc.aio.server()
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(SdsService(store, metrics), self._server)

    async def start(self) -> None:
        try:
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            # A socket left by a crashed agent would make bind fail; anything else is not ours to remove.
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(self.socket_path.lstat().st_mode):
                    self.socket_path.unlink()
            self._server.add_insecure_port(f"unix:{self.socket_path}")
        except (OSError, RuntimeError) as exc:
            raise ConfigurationError(f"cannot bind the SDS socket {self.socket_path}: {exc}") from exc
        await self._server.start()
        # The socket hands out the private key: only this user may connect.
        os.chmod(self.socket_path, 0o600)
        log.info("SDS serving", socket=str(self.socket_path))

    async def stop(self) -> None:
        await self._server.stop(grace=0.5)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
