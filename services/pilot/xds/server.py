"""The ADS gRPC service: one async stream handler per Envoy, sending shared bytes.

Both ADS methods, `StreamAggregatedResources` (state of the world) and
`DeltaAggregatedResources` (incremental), run the same stream loop around their own
protocol state (`Connection`, `DeltaConnection`).  They are registered with a generic
handler whose response serializer is None, so grpc.aio sends the pre-built response bytes
untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from services.pilot.errors import InconsistentConfig, InvalidNode, NotReady, PilotError
from services.pilot.model.proxy import Proxy, parse_node
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.connection import Connection
from services.pilot.xds.delta import DeltaConnection
from services.pilot.xds.requests import read_request
from services.pilot.xds.snapshot import Snapshot
from services.pilot.xds.stream_state import AnyConnection, Observer

log = structlog.get_logger(__name__)

ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
# Pilot's refusals of a stream, mapped here once (see services/pilot/errors.py).
GRPC_STATUS: dict[type[PilotError], grpc.StatusCode] = {
    NotReady: grpc.StatusCode.UNAVAILABLE,
    InvalidNode: grpc.StatusCode.INVALID_ARGUMENT,
}
_PUSH = object()
# A push of endpoints larger than this, per stream, is written under a send slot.
LARGE_SEND_BYTES = 64 * 1024
_CLOSED = object()


class _Stream:
    """A live stream: its connection state and a one-slot push queue."""

    def __init__(self, connection: AnyConnection) -> None:
        self.connection = connection
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.push_queued = False

    def request_push(self) -> None:
        # One pending push at most: a slow proxy merges pushes instead of queueing them.
        if not self.push_queued:
            self.push_queued = True
            self.events.put_nowait(_PUSH)


class AdsServer:
    def __init__(self, cache: SnapshotCache, *, observer: Observer | None = None, concurrent_sends: int = 0,
                 large_send_bytes: int = LARGE_SEND_BYTES) -> None:
        """`concurrent_sends` > 0: at most that many streams build and write a push at once
        (Istio's PILOT_PUSH_THROTTLE, which also bounds pushes only).  gRPC copies each
        message it is given until the peer has read it, and a response unlike other
        streams' is built per stream, so a push reaching a thousand proxies at once could
        hold a thousand copies of a whole type.

        Two kinds of event take no slot, because a slot for each cost more than it saved:
        - requests and ACKs: a sync is driven by requests, and every ACK of a push queued
          behind the push's own slots;
        - a push that changed only endpoints, unless its responses pass `large_send_bytes`:
          its load assignments are one body shared by every stream, and written as one
          batch rather than in waves of a hundred streams they cost pilot about a fifth
          less CPU at 1,000 proxies (docs/pilot-scaling.md).
        A peer that stops reading keeps its slot until its stream ends: it takes as many
        stuck peers as slots to hold every push back."""
        self.cache = cache
        self.observer = observer or Observer()
        self._send_slots = asyncio.Semaphore(concurrent_sends) if concurrent_sends > 0 else None
        self._large_send_bytes = large_send_bytes
        self.ready = False
        self._streams: dict[str, _Stream] = {}
        self._ids = itertools.count(1)

    @property
    def connections(self) -> list[AnyConnection]:
        return [s.connection for s in self._streams.values()]

    def handler(self) -> grpc.GenericRpcHandler:
        sotw = grpc.stream_stream_rpc_method_handler(
            self._serving(Connection),
            # ACKs' repeated resource names are left as bytes (see requests.py).
            request_deserializer=read_request,
            response_serializer=None,
        )
        delta = grpc.stream_stream_rpc_method_handler(
            self._serving(DeltaConnection),
            request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
            response_serializer=None,
        )
        return grpc.method_handlers_generic_handler(
            ADS_SERVICE, {"StreamAggregatedResources": sotw, "DeltaAggregatedResources": delta})

    def push_all(self) -> None:
        """A new push context is in the cache: wake every stream."""
        for stream in self._streams.values():
            stream.request_push()

    def _snapshot(self, proxy: Proxy) -> Snapshot | None:
        try:
            return self.cache.get(proxy)
        except InconsistentConfig as exc:
            log.error("refusing to serve inconsistent config", proxy=proxy.id, error=str(exc))
            return None
        except Exception:
            # A translation bug must not take the stream (or pilot) down: the proxy keeps
            # its last good config, and the bug is logged with its traceback.
            log.exception("generating config failed", proxy=proxy.id)
            return None

    def _serving(self, make_connection: type[AnyConnection]) -> Callable[
            [AsyncIterator[Any], grpc.aio.ServicerContext], Awaitable[None]]:
        """The stream handler for one protocol (SotW or delta): same loop, its own bookkeeping."""

        async def serve(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
            # aclosing: a cancelled stream unregisters now, not whenever the generator is collected.
            async with contextlib.aclosing(self._stream(requests, context, make_connection)) as responses:
                async for response in responses:
                    # Written here rather than yielded to gRPC, whose generator loop keeps the
                    # last message it sent: a full sync ends with a whole config (half a
                    # megabyte at 1,000 services), and a thousand idle streams held 520 MB.
                    await context.write(response)
                    del response

        return serve

    async def _first_request(self, requests: AsyncIterator[Any]) -> Any | None:
        if not self.ready:
            # Answering before config is loaded would tell Envoy to delete everything.
            raise NotReady("pilot has not loaded its config yet")
        try:
            return await anext(aiter(requests))
        except StopAsyncIteration:
            return None

    async def _stream(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext,
        make_connection: type[AnyConnection],
    ) -> AsyncGenerator[bytes, None]:
        try:
            first = await self._first_request(requests)
            if first is None:
                return
            proxy = parse_node(first.node)
        except PilotError as exc:
            log.warning("stream refused", reason=str(exc), peer=context.peer())
            await context.abort(GRPC_STATUS.get(type(exc), grpc.StatusCode.INVALID_ARGUMENT), str(exc))
            return
        conn_id = str(next(self._ids))
        stream = _Stream(make_connection(conn_id, proxy, observer=self.observer))
        stream.connection.client_version = _client_version(first.node)
        self._streams[conn_id] = stream
        log.info("proxy connected", proxy=proxy.id, conn=conn_id, peer=context.peer(), api=stream.connection.api)
        reader = asyncio.create_task(self._read(requests, stream), name=f"ads-read-{conn_id}")
        try:
            event: Any = first
            while event is not _CLOSED:
                # Decided once, before any wait: a push that turns endpoint-only while this
                # stream waits for a slot must not make it ask for a second.
                endpoints_only = event is _PUSH and self.cache.endpoints_only
                async with self._slot_if(event is _PUSH and not endpoints_only):
                    responses = self._respond(stream, event)
                    async with self._slot_if(endpoints_only and sum(map(len, responses)) > self._large_send_bytes):
                        # Popped, so nothing here holds a response once it is written (see serve).
                        while responses:
                            yield responses.pop(0)
                stream.connection.note_sync()
                # Dropped before waiting: an idle stream would otherwise hold its last request
                # (an EDS ACK names every cluster: ~50 KB, ~50 MB across 1,000 streams after
                # an endpoint change).
                event = None
                event = await stream.events.get()
        finally:
            reader.cancel()
            del self._streams[conn_id]
            log.info("proxy disconnected", proxy=proxy.id, conn=conn_id)

    def _respond(self, stream: _Stream, event: Any) -> list[bytes]:
        """The responses one event calls for: a push, or a request (or ACK, or NACK)."""
        proxy = stream.connection.proxy
        if event is _PUSH:
            stream.push_queued = False
            snapshot = self._snapshot(proxy)
            return stream.connection.push(snapshot) if snapshot is not None else []
        return stream.connection.receive(event, self._snapshot(proxy))

    def _slot_if(self, needed: bool) -> contextlib.AbstractAsyncContextManager[Any]:
        """A send slot when `needed` and slots are on: a config push holds it from building
        its responses, a large endpoint push while writing them (see `__init__`)."""
        return self._send_slots if needed and self._send_slots is not None else contextlib.nullcontext()

    async def _read(self, requests: AsyncIterator[Any], stream: _Stream) -> None:
        try:
            async for request in requests:
                stream.events.put_nowait(request)
                del request  # not held while the next one is awaited (see `_stream`)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        except Exception:
            log.exception("reading the ADS stream failed", proxy=stream.connection.proxy.id)
        finally:
            stream.events.put_nowait(_CLOSED)


def _client_version(node: base_pb2.Node) -> str:
    """Envoy's version as its node reports it (istioctl's proxy VERSION column)."""
    if node.WhichOneof("user_agent_version_type") == "user_agent_build_version":
        number = node.user_agent_build_version.version
        return f"{number.major_number}.{number.minor_number}.{number.patch}"
    return node.user_agent_version
