"""The floor under the scale run's two latency goals with the benchmark's own simulated
sidecars: a server that translates nothing.

`transport_floor` measures Python gRPC alone, with bare clients.  This measures the scale
run's two changes through everything of that run except pilot's own work: the load tool's
worker processes (parsing, ACKing and reporting as they do against pilot), its ledger, and
the registration refresher writing to NATS.  The server (one grpc.aio process on pilot's
`GRPC_EXPERIMENTS`, uvloop) answers every simulated sidecar with the responses pilot's
translation built beforehand, in this process, for the mesh's first sidecar; each round it
writes the next change's response, one shared message, to every stream at once: first the
VirtualService changes (a route configuration each), then the endpoint changes (one load
assignment each, a workload registering or leaving), as the scale run makes them and
pilot's own stream code encodes them.

A round lasts from the server being told to write to the last proxy's ACK (the ledger's
times, as the scale run's): what pilot's figure would be if its push, snapshots and stream
bookkeeping cost nothing on this machine.

    python -m bench.pilot.replay_floor [--rounds N] [--proxies N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2

from bench.pilot.load import LoadGenerator
from bench.pilot.load_client import TypeState, request_bytes
from bench.pilot.measure import sample
from bench.pilot.scale import initial_sync, summary
from bench.pilot.scale_mesh import MeshScale, MeshWriter
from bench.pilot.transport_floor import Outbox, outbox_server, pilots_grpc_experiments
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, short_type
from libs.runtime import configure_logging
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import Proxy, parse_node
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import RegistryContents
from services.pilot.workloads_watch import instance_of
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.connection import Connection
from services.pilot.xds.requests import read_request
from services.pilot.xds.snapshot import Snapshot
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup

ADS = "envoy.service.discovery.v3.AggregatedDiscoveryService"
WARMUP = 2


@dataclass(frozen=True)
class Replay:
    """What the server sends: each type's response of one sidecar's sync, by type URL, then
    per kind of change (`CHANGES`) one response per round."""

    sync: dict[str, bytes]
    changes: dict[str, tuple[bytes, ...]]


# Each kind of change the scale run times, and the type its response carries.
CHANGES = {"virtual_service_change": ROUTE_TYPE, "endpoint_change": ENDPOINT_TYPE}


def replay_of(mesh: MeshScale, rounds: int) -> Replay:
    """Pilot's translation and SotW stream code, in process, for the mesh's first sidecar:
    its sync, then `rounds` VirtualService changes and `rounds` endpoint changes, each pushed
    and ACKed as on a stream."""
    config = ConfigSnapshot(1, {r.key: r for r in mesh.service_entries()})
    workloads = [instance_of(w) for w in mesh.workloads()]

    def registries(version: int) -> list[RegistryContents]:
        return [RegistryContents("replay", workloads=tuple(workloads), version=str(version))]

    push = PushContext.build(config, MeshConfig(), registries=registries(0))
    cache = SnapshotCache()
    cache.set_push(push)
    proxy = parse_node(mesh.proxies(1)[0].node())
    snapshot = _current(cache, proxy)
    stream = Connection("replay", proxy)
    states = {CLUSTER_TYPE: TypeState(CLUSTER_TYPE, None),
              ENDPOINT_TYPE: TypeState(ENDPOINT_TYPE, snapshot.eds_clusters),
              LISTENER_TYPE: TypeState(LISTENER_TYPE, None),
              ROUTE_TYPE: TypeState(ROUTE_TYPE, snapshot.route_names)}

    def ack(raw: bytes) -> str:
        response = discovery_pb2.DiscoveryResponse.FromString(raw)
        state = states[response.type_url]
        state.version, state.nonce = response.version_info, response.nonce
        if stream.receive(read_request(request_bytes(state)), snapshot):
            raise AssertionError(f"pilot answered an ACK of {short_type(response.type_url)}")
        return response.type_url

    sync: dict[str, bytes] = {}
    for state in states.values():
        for raw in stream.receive(read_request(request_bytes(state)), snapshot):
            sync.setdefault(ack(raw), raw)
    stream.note_sync()

    def pushed(type_url: str) -> bytes:
        nonlocal snapshot
        cache.set_push(push)
        snapshot = _current(cache, proxy)
        sent = stream.push(snapshot)
        if [ack(raw) for raw in sent] != [type_url]:
            raise AssertionError(f"a change was not one {short_type(type_url)} response")
        stream.note_sync()
        return sent[0]

    routes, endpoints = [], []
    for n in range(1, rounds + 1):
        service = mesh.virtual_service(n)
        config = ConfigSnapshot(config.revision + 1, {**config.resources, service.key: service})
        push = PushContext.build(config, MeshConfig(), registries=registries(0), previous=push)
        routes.append(pushed(ROUTE_TYPE))
    for n in range(rounds):
        registration, registers = mesh.endpoint_change(n)
        workload = instance_of(registration)
        if registers:
            workloads.append(workload)
        else:
            workloads.remove(workload)
        push = PushContext.build(config, MeshConfig(), registries=registries(n + 1), previous=push)
        endpoints.append(pushed(ENDPOINT_TYPE))
    return Replay(sync, {"virtual_service_change": tuple(routes), "endpoint_change": tuple(endpoints)})


def _current(cache: SnapshotCache, proxy: Proxy) -> Snapshot:
    snapshot = cache.get(proxy)
    if snapshot is None:
        raise AssertionError("no push in the cache")
    return snapshot


@dataclass(frozen=True)
class Replayed:
    """One kind of change's rounds."""

    rounds: int
    # From the write command to the last proxy's ACK, and to the first proxy's arrival.
    last_ack_ms: dict[str, float]
    first_arrival_ms: dict[str, float]
    server_cpu_ms_per_round: float
    load_tool_cpu_ms_per_round: float


@dataclass(frozen=True)
class ReplayFloor:
    proxies: int
    # By kind of change (`CHANGES`).
    changes: dict[str, Replayed]


async def _serve(port: int, replay: Replay, control: Queue[str], out: Queue[Any]) -> None:
    def answering(outbox: Outbox) -> Callable[[bytes], None]:
        sent: set[str] = set()

        def answer(raw: bytes) -> None:
            # Each type's first request gets the sync's response; everything else is an ACK,
            # read and not decoded (pilot decodes an ACK's 1,000 EDS names only when they change).
            if len(sent) == len(replay.sync):
                return
            type_url = discovery_pb2.DiscoveryRequest.FromString(raw).type_url
            if type_url in replay.sync and type_url not in sent:
                sent.add(type_url)
                outbox.put_nowait(replay.sync[type_url])

        return answer

    server, outboxes = await outbox_server(port, ADS, "StreamAggregatedResources", answering)
    out.put("serving")
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, control.get)) != "stop":
        kind, n = command.split()
        for outbox in outboxes:
            outbox.put_nowait(replay.changes[kind][int(n)])
    for outbox in outboxes:
        outbox.put_nowait(None)
    await server.stop(0.5)


def _server(port: int, replay: Replay, control: Queue[str], out: Queue[Any]) -> None:
    import uvloop

    uvloop.run(_serve(port, replay, control, out))


async def measure(rounds: int = 20, *, proxies: int = 1000, services: int = 1000, endpoints: int = 3,
                  namespaces: int = 10, processes: int = 4, timeout_s: float = 300.0) -> ReplayFloor:
    """For each kind of change, `WARMUP` + `rounds` rounds, each timed until every proxy ACKed
    the round's response."""
    mesh = MeshScale(services=services, endpoints=endpoints, namespaces=namespaces)
    replay = replay_of(mesh, rounds + WARMUP)
    work = Path(tempfile.mkdtemp(prefix="mzb-replay-", dir="/tmp"))
    group = ProcessGroup(work)
    spawn = multiprocessing.get_context("spawn")
    control: Queue[str] = spawn.Queue()
    out: Queue[Any] = spawn.Queue()
    port = free_port()
    server = spawn.Process(target=_server, args=(port, replay, control, out), daemon=True)
    writer: MeshWriter | None = None
    try:
        # The scale run's other load on the machine: every registration refreshed in NATS.
        writer = await MeshWriter.connect(start_nats(group, work / "nats").url)
        await writer.write_mesh(mesh)
        writer.start_refreshing()
        with pilots_grpc_experiments():
            server.start()
        await _serving(server, out, timeout_s)
        load = LoadGenerator(f"127.0.0.1:{port}", mesh.proxies(proxies), processes=processes)
        await load.start()
        try:
            await initial_sync(load, timeout_s=timeout_s)
            return ReplayFloor(proxies, {kind: await _rounds(load, server.pid or 0, control, kind, rounds, timeout_s)
                                         for kind in CHANGES})
        finally:
            await load.stop()
    finally:
        control.put("stop")
        server.join(timeout=5)
        if server.is_alive():
            server.kill()
            server.join()
        try:
            if writer is not None:
                await writer.close()
        finally:
            group.stop_all()
            shutil.rmtree(work, ignore_errors=True)


async def _serving(server: BaseProcess, out: Queue[Any], timeout_s: float) -> None:
    """Until the server says it serves; off the loop, which the refresher is using."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout_s
    while server.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            if await loop.run_in_executor(None, out.get, True, 0.2) == "serving":
                return
    raise RuntimeError(f"the replay server did not start (exit code {server.exitcode})")


async def _rounds(load: LoadGenerator, server_pid: int, control: Queue[str], kind: str, rounds: int,
                  timeout_s: float) -> Replayed:
    watch = short_type(CHANGES[kind])
    last_acks, first_arrivals = [], []
    server_cpu = load_cpu = 0.0
    for n in range(WARMUP + rounds):
        if n == WARMUP:
            server_cpu, load_cpu = sample(server_pid).cpu_s, load.cpu_s()
        wrote = time.monotonic()
        control.put(f"{kind} {n}")
        converged = await load.wait(lambda wrote=wrote: load.ledger.converged((watch,), wrote),  # type: ignore[misc]
                                    timeout_s, f"replayed {kind} {n} on every proxy")
        if n >= WARMUP:
            last_acks.append(converged.last_ack - wrote)
            first_arrivals.append(converged.first_arrival - wrote)
    server_cpu, load_cpu = sample(server_pid).cpu_s - server_cpu, load.cpu_s() - load_cpu
    return Replayed(rounds, _summary(last_acks), _summary(first_arrivals), round(server_cpu / rounds * 1000, 1),
                    round(load_cpu / rounds * 1000, 1))


def _summary(values: list[float]) -> dict[str, float]:
    found = summary(values)
    if found is None:
        raise ValueError("no rounds measured")
    return found


def floors(rounds: int = 20, **kwargs: Any) -> dict[str, Any]:
    """Both changes' rounds, as JSON (`CHANGES` keys), with the proxies they reached."""
    import uvloop

    replayed = uvloop.run(measure(rounds, **kwargs))
    return {"proxies": replayed.proxies, **{kind: asdict(r) for kind, r in replayed.changes.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pilot.replay_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--proxies", type=int, default=1000)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    # Pilot's stream code runs in this process (`replay_of`) and logs each response at debug.
    configure_logging("warning")
    print(json.dumps(floors(args.rounds, proxies=args.proxies), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

