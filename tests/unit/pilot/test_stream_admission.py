"""How pilot refuses an xDS stream, over a real gRPC channel on loopback: before it has
loaded config it answers UNAVAILABLE (an empty answer would tell Envoy to delete
everything); a node id it cannot serve is INVALID_ARGUMENT, with the reason.  And how it
holds streams back: at most `concurrent_sends` build and write responses at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from libs.envoy import CLUSTER_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.push_context import PushContext
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.connection import Connection
from services.pilot.xds.requests import ReadRequest, read_request
from services.pilot.xds.server import ADS_SERVICE, AdsServer


@pytest.fixture
async def ads() -> AsyncIterator[tuple[AdsServer, int]]:
    server = AdsServer(SnapshotCache())
    grpc_server = grpc.aio.server()
    grpc_server.add_generic_rpc_handlers((server.handler(),))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield server, port
    finally:
        await grpc_server.stop(None)


def _first_answer(port: int, node_id: str) -> grpc.RpcError:
    # The blocking client, on a thread: grpc.aio's client reports INTERNAL ("Internal error
    # from Core") instead of the server's status when the refusal beats its own write of
    # the request to completion, a race that shows on a loaded CI machine.
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(f"/{ADS_SERVICE}/StreamAggregatedResources",
                                     request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
                                     response_deserializer=discovery_pb2.DiscoveryResponse.FromString)
        request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE)
        request.node.id = node_id
        with pytest.raises(grpc.RpcError) as refused:
            next(call(iter([request])))
        return refused.value


async def first_answer(port: int, node_id: str) -> grpc.RpcError:
    return await asyncio.to_thread(_first_answer, port, node_id)


async def test_a_pilot_without_config_refuses_streams_as_unavailable(ads: tuple[AdsServer, int]) -> None:
    _, port = ads
    error = await first_answer(port, "sidecar~10.0.0.1~ratings-v1.default~default.svc.cluster.local")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "has not loaded its config" in (error.details() or "")


@pytest.mark.parametrize(("node_id", "reason"), [
    ("not-a-node-id", "is not <type>~<ip>~<pod>.<namespace>~<domain>"),
    ("gateway~10.0.0.1~ingress.istio-system~x", "type 'gateway' is not sidecar or router"),
])
async def test_a_node_pilot_cannot_serve_is_refused_with_the_reason(
        ads: tuple[AdsServer, int], node_id: str, reason: str) -> None:
    server, port = ads
    server.ready = True
    error = await first_answer(port, node_id)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (error.details() or "")


# -- the send throttle ---------------------------------------------------------------------


class _Context:
    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


async def _requests(node_id: str) -> AsyncIterator[ReadRequest]:
    request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE)
    request.node.id = node_id
    # As the server's deserializer hands it to the stream.
    yield read_request(request.SerializeToString())
    await asyncio.Event().wait()  # the stream stays open


def _served(server: AdsServer, n: int) -> AsyncGenerator[bytes, None]:
    node = f"sidecar~10.0.0.{n}~app-{n}.default~default.svc.cluster.local"
    return server._stream(_requests(node), _Context(), Connection)


async def test_a_stream_waits_for_a_send_slot_until_the_one_holding_it_has_written() -> None:
    cache = SnapshotCache()
    cache.set_push(PushContext.build(ConfigSnapshot(1, {}), MeshConfig()))
    server = AdsServer(cache, concurrent_sends=1)
    server.ready = True
    first, second = _served(server, 1), _served(server, 2)
    try:
        # The first stream's CDS answer is handed out but not yet written: it holds the slot.
        assert await anext(first)
        waiting = asyncio.ensure_future(anext(second))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        # Written (the stream asks for its next event): the slot passes on.
        moving_on = asyncio.ensure_future(anext(first))
        assert await asyncio.wait_for(waiting, timeout=10)
        moving_on.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await moving_on
    finally:
        await first.aclose()
        await second.aclose()
