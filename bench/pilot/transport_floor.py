"""What Python gRPC alone costs at the scale benchmark's size: the floor under its latencies.

No translation, no xDS: server processes (grpc.aio, as pilot serves, with pilot's
`GRPC_EXPERIMENTS`) hold 1,000 streams opened by 4 client processes (grpc.aio, one channel
each, as the load tool's simulated sidecars); each round, every server writes one message of
a given size to each of its streams, and each client answers each message with one the size
of that change's ACK.  A round lasts from the first server's first write to the last
server's last ACK read (`time.monotonic`, the same clock in every process here).

Run at the size of the scale benchmark's two changes, an endpoint change (one load
assignment, ~0.5 KB) and a VirtualService change (a 1,000-virtual-host route
configuration, ~435 KB), it says how much of each change's latency is the transport alone
on this machine, whatever pilot does: pilot cannot beat it, and with the load tool on the
same two cores, the distance between the two is what translation and the load tool's own
work add.

    python -m bench.pilot.transport_floor [--servers N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from typing import Any

import grpc

from bench.pilot.load_client import CHANNEL_OPTIONS
from bench.pilot.measure import sample
from services.pilot.__main__ import GRPC_EXPERIMENTS
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

SERVICE, METHOD = "bench.Floor", "Stream"
# Each change's response and its ACK at the benchmark's scale: one load assignment (~0.4 KB)
# whose ACK names every one of the 1,000 EDS clusters the proxy watches, as a SotW ACK repeats
# its subscription; and a route configuration of 1,000 virtual hosts, whose ACK names the
# two route configurations.
ENDPOINT_CHANGE = (500, 49_000)
VIRTUAL_SERVICE_CHANGE = (435_000, 110)
WARMUP = 2


@dataclass(frozen=True)
class Floor:
    message_bytes: int
    ack_bytes: int
    streams: int
    servers: int
    rounds: int
    round_ms_p50: float
    round_ms_max: float
    server_cpu_ms_per_round: float
    client_cpu_ms_per_round: float


Outbox = asyncio.Queue[bytes | None]


async def outbox_server(port: int, service: str, method: str,
                        reader: Callable[[Outbox], Callable[[Any], None]]) -> tuple[grpc.aio.Server, list[Outbox]]:
    """A started grpc.aio server on 127.0.0.1:`port` whose streams each write what their
    outbox is given (None ends the stream); `reader(outbox)`, called as a stream opens,
    returns what is done with each request it reads.  Also the outboxes, as streams open."""
    outboxes: list[Outbox] = []

    async def stream(requests: Any, context: grpc.aio.ServicerContext) -> None:
        outbox: Outbox = asyncio.Queue()
        outboxes.append(outbox)
        handle = reader(outbox)

        async def read() -> None:
            async for request in requests:
                handle(request)

        reading = asyncio.ensure_future(read())
        try:
            while (message := await outbox.get()) is not None:
                await context.write(message)
        finally:
            reading.cancel()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        service, {method: grpc.stream_stream_rpc_method_handler(stream)})])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, outboxes


async def _serve(port: int, control: Queue[str], out: Queue[Any], size: int) -> None:
    acked = asyncio.Event()
    acks = 0

    def count_ack(_: Any) -> None:
        nonlocal acks
        acks += 1
        if acks == len(outboxes):
            acked.set()

    server, outboxes = await outbox_server(port, SERVICE, METHOD, lambda _: count_ack)
    loop = asyncio.get_running_loop()
    message = b"x" * size
    while (command := await loop.run_in_executor(None, control.get)) != "stop":
        if command == "streams":
            out.put(len(outboxes))
            continue
        acks = 0
        acked.clear()
        cpu, began = time.process_time(), time.monotonic()
        for outbox in outboxes:
            outbox.put_nowait(message)
        if outboxes:
            await acked.wait()
        out.put((time.process_time() - cpu, began, time.monotonic()))
    for outbox in outboxes:
        outbox.put_nowait(None)
    await server.stop(0.5)


def _server(port: int, control: Queue[str], out: Queue[Any], size: int) -> None:
    asyncio.run(_serve(port, control, out, size))


async def _streams(port: int, count: int, ack_bytes: int) -> None:
    ack = b"a" * ack_bytes

    async def one() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
            call = channel.stream_stream(f"/{SERVICE}/{METHOD}")(wait_for_ready=True)
            while await call.read() is not grpc.aio.EOF:
                await call.write(ack)

    await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)


def _client(port: int, count: int, ack_bytes: int) -> None:
    asyncio.run(_streams(port, count, ack_bytes))


def measure(message_bytes: int, ack_bytes: int, *, streams: int = 1000, servers: int = 1, clients: int = 4,
            rounds: int = 12, timeout_s: float = 60.0) -> Floor:
    """Rounds of one message to every stream and its ACK back (the first WARMUP not counted)."""
    spawn = multiprocessing.get_context("spawn")
    port = free_port()
    controls: list[Queue[str]] = [spawn.Queue() for _ in range(servers)]
    outs: list[Queue[Any]] = [spawn.Queue() for _ in range(servers)]
    processes = [spawn.Process(target=_server, args=(port, controls[n], outs[n], message_bytes), daemon=True)
                 for n in range(servers)]
    try:
        # A spawned process reads gRPC's setting from the environment it starts with.
        with pilots_grpc_experiments():
            for process in processes:
                process.start()
        wait_until(lambda: _listening(port), timeout=timeout_s, interval=0.05, what="the floor's servers")
        shares = [streams // clients + (n < streams % clients) for n in range(clients)]
        client_processes = [spawn.Process(target=_client, args=(port, share, ack_bytes), daemon=True)
                            for share in shares]
        processes += client_processes
        for process in client_processes:
            process.start()
        wait_until(lambda: _ask(controls, outs, "streams") >= streams, timeout=timeout_s, interval=0.1,
                   what=f"{streams} streams open")
        walls, server_cpu, client_cpu = [], [], []
        for _ in range(rounds + WARMUP):
            before = sum(sample(p.pid).cpu_s for p in client_processes if p.pid)
            for control in controls:
                control.put("round")
            results = [out.get(timeout=timeout_s) for out in outs]
            client_cpu.append(sum(sample(p.pid).cpu_s for p in client_processes if p.pid) - before)
            walls.append(max(r[2] for r in results) - min(r[1] for r in results))
            server_cpu.append(sum(r[0] for r in results))
        walls, server_cpu, client_cpu = walls[WARMUP:], server_cpu[WARMUP:], client_cpu[WARMUP:]
        return Floor(message_bytes, ack_bytes, streams, servers, rounds, round(statistics.median(walls) * 1000, 1),
                     round(max(walls) * 1000, 1), round(statistics.mean(server_cpu) * 1000, 1),
                     round(statistics.mean(client_cpu) * 1000, 1))
    finally:
        for control in controls:
            control.put("stop")
        for process in processes:
            process.join(timeout=3)
            if process.is_alive():
                process.kill()
                process.join()


@contextlib.contextmanager
def pilots_grpc_experiments() -> Iterator[None]:
    """Pilot's default for the processes started inside, unless the operator set one."""
    if "GRPC_EXPERIMENTS" in os.environ:
        yield
        return
    os.environ["GRPC_EXPERIMENTS"] = GRPC_EXPERIMENTS
    try:
        yield
    finally:
        del os.environ["GRPC_EXPERIMENTS"]


def _ask(controls: list[Queue[str]], outs: list[Queue[Any]], command: str) -> int:
    for control in controls:
        control.put(command)
    return sum(int(out.get(timeout=10)) for out in outs)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def floors(servers: int = 1, rounds: int = 12) -> dict[str, Any]:
    """The floor under both of the scale benchmark's changes."""
    return {name: asdict(measure(*sizes, servers=servers, rounds=rounds))
            for name, sizes in (("endpoint_change", ENDPOINT_CHANGE),
                                ("virtual_service_change", VIRTUAL_SERVICE_CHANGE))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pilot.transport_floor",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(json.dumps(floors(args.servers, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
