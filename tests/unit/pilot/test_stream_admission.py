"""How pilot refuses an xDS stream, over a real gRPC channel on loopback: before it has
loaded config it answers UNAVAILABLE (an empty answer would tell Envoy to delete
everything); a node id it cannot serve is INVALID_ARGUMENT, with the reason.  And how it
holds pushes back: at most `concurrent_sends` streams build and write a push at once, while
requests and ACKs are answered as they come."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from libs.config import parse_text
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.push_context import PushContext
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.connection import Connection
from services.pilot.xds.requests import ReadRequest, read_request
from services.pilot.xds.server import ADS_SERVICE, LARGE_SEND_BYTES, AdsServer


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


async def _requests(node_id: str, endpoints: tuple[str, ...]) -> AsyncIterator[ReadRequest]:
    request = discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE)
    request.node.id = node_id
    # As the server's deserializer hands them to the stream.
    yield read_request(request.SerializeToString())
    if endpoints:
        yield read_request(discovery_pb2.DiscoveryRequest(type_url=ENDPOINT_TYPE,
                                                          resource_names=endpoints).SerializeToString())
    await asyncio.Event().wait()  # the stream stays open


def _served(server: AdsServer, n: int, endpoints: tuple[str, ...] = ()) -> AsyncGenerator[bytes, None]:
    node = f"sidecar~10.0.0.{n}~app-{n}.default~default.svc.cluster.local"
    return server._stream(_requests(node, endpoints), _Context(), Connection)


@contextlib.asynccontextmanager
async def _two_streams(server: AdsServer, endpoints: tuple[str, ...] = ()) -> AsyncIterator[
        tuple[AsyncGenerator[bytes, None], AsyncGenerator[bytes, None], list[asyncio.Future[bytes]]]]:
    """Two streams of `server`, and a list for the reads left pending: cancelled, and the
    streams closed, at the end."""
    first, second = (_served(server, n, endpoints) for n in (1, 2))
    pending: list[asyncio.Future[bytes]] = []
    try:
        yield first, second, pending
    finally:
        for future in pending:
            future.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await future
        await first.aclose()
        await second.aclose()


async def _settled(future: asyncio.Future[bytes]) -> bool:
    """Whether `future` is done once the loop has run what was ready to run."""
    for _ in range(20):
        await asyncio.sleep(0)
    return future.done()


def _config(revision: int, *documents: str) -> ConfigSnapshot:
    parsed = parse_text("---\n".join(documents), "test")
    assert parsed.ok, parsed.errors()
    return ConfigSnapshot(revision, {r.key: r for _, r in parsed.resources})


SERVICE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.9}]
"""


async def test_a_push_waits_for_a_send_slot_until_the_stream_holding_it_has_written() -> None:
    cache = SnapshotCache()
    cache.set_push(PushContext.build(ConfigSnapshot(1, {}), MeshConfig()))
    server = AdsServer(cache, concurrent_sends=1)
    server.ready = True
    async with _two_streams(server) as (first, second, pending):
        # Requests take no slot: the first stream's CDS answer, handed out and not yet
        # written, does not hold the second's back.
        assert await anext(first)
        assert await asyncio.wait_for(anext(second), timeout=10)
        # A push with a new cluster: the first stream's answer is handed out but not yet
        # written, and holds the one slot.
        cache.set_push(PushContext.build(_config(2, SERVICE), MeshConfig()))
        server.push_all()
        assert b"reviews.default.svc.cluster.local" in await asyncio.wait_for(anext(first), timeout=10)
        waiting = asyncio.ensure_future(anext(second))
        assert not await _settled(waiting)
        # Written (the stream asks for its next event): the slot passes on.
        pending.append(asyncio.ensure_future(anext(first)))
        assert b"reviews.default.svc.cluster.local" in await asyncio.wait_for(waiting, timeout=10)


SELECTING = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
"""
REVIEWS_EDS = "outbound|9080||reviews.default.svc.cluster.local"


def _reviews(address: str) -> WorkloadInstance:
    return WorkloadInstance(name=f"reviews-{address}", namespace="default", address=address,
                            labels=(("app", "reviews"),))


@pytest.mark.parametrize(("large_send_bytes", "held_back"), [(LARGE_SEND_BYTES, False), (0, True)])
async def test_a_push_of_endpoints_takes_a_send_slot_only_when_it_is_large(large_send_bytes: int,
                                                                           held_back: bool) -> None:
    config = _config(1, SELECTING)
    cache = SnapshotCache()
    cache.set_push(PushContext.build(config, MeshConfig(), workloads=[_reviews("10.1.0.1")]))
    server = AdsServer(cache, concurrent_sends=1, large_send_bytes=large_send_bytes)
    server.ready = True
    async with _two_streams(server, endpoints=(REVIEWS_EDS,)) as (first, second, pending):
        for stream in (first, second):
            assert REVIEWS_EDS.encode() in await asyncio.wait_for(anext(stream), timeout=10)  # CDS
            assert b"10.1.0.1" in await asyncio.wait_for(anext(stream), timeout=10)  # EDS
        # The workload moves: the same config, new endpoints.
        cache.set_push(PushContext.build(config, MeshConfig(), workloads=[_reviews("10.1.0.2")]))
        assert cache.endpoints_only
        server.push_all()
        assert b"10.1.0.2" in await asyncio.wait_for(anext(first), timeout=10)
        # The first stream's push is handed out and not yet written.
        waiting = asyncio.ensure_future(anext(second))
        assert await _settled(waiting) is not held_back
        pending.append(asyncio.ensure_future(anext(first)))
        assert b"10.1.0.2" in await asyncio.wait_for(waiting, timeout=10)


async def test_a_push_that_turns_endpoint_only_while_waiting_for_its_slot_takes_no_second() -> None:
    ratings = SERVICE.replace("reviews", "ratings").replace("10.0.0.9", "10.0.0.8")
    before, after = _config(1, SELECTING), _config(2, SELECTING, ratings)
    cache = SnapshotCache()
    cache.set_push(PushContext.build(before, MeshConfig(), workloads=[_reviews("10.1.0.1")]))
    # Every push of endpoints counts as large here, so it too wants the one slot.
    server = AdsServer(cache, concurrent_sends=1, large_send_bytes=0)
    server.ready = True
    async with _two_streams(server, endpoints=(REVIEWS_EDS,)) as (first, second, pending):
        for stream in (first, second):
            await asyncio.wait_for(anext(stream), timeout=10)  # CDS
            await asyncio.wait_for(anext(stream), timeout=10)  # EDS
        # A config push: the first stream builds it and holds the slot, the second waits.
        cache.set_push(PushContext.build(after, MeshConfig(), workloads=[_reviews("10.1.0.1")]))
        server.push_all()
        assert b"ratings" in await asyncio.wait_for(anext(first), timeout=10)  # CDS
        waiting = asyncio.ensure_future(anext(second))
        pending.append(waiting)
        assert not await _settled(waiting)
        # While it waits, the push becomes one of endpoints only.
        cache.set_push(PushContext.build(after, MeshConfig(), workloads=[_reviews("10.1.0.2")]))
        assert cache.endpoints_only
        server.push_all()
        assert b"ratings" in await asyncio.wait_for(anext(first), timeout=10)  # its cluster's EDS
        # The first stream writes its push and lets the slot go.
        pending.append(asyncio.ensure_future(anext(first)))
        # The second stream builds the new push under the slot it waited for, and writes it.
        assert b"ratings" in await asyncio.wait_for(waiting, timeout=10)  # CDS
        assert b"10.1.0.2" in await asyncio.wait_for(anext(second), timeout=10)  # EDS
