"""A load-tool worker process: many simulated sidecars on one event loop, reporting to the parent.

Protocol on the pipe (pickled tuples):
  parent -> worker: ("connect",)  open every stream now;  ("stop",)  close them and exit
  worker -> parent: ("ready", pid)  imports done, waiting for "connect";
                    ("deliveries", [Delivery, ...])  batched every FLUSH_S;
                    ("stopped", {"streams": n, "errors": [...], "parsed": n})
                    ("failed", traceback)  the worker crashed
Sending runs on its own thread, so a busy parent never stalls the clients' event loop (which
would delay the arrivals being measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from bench.pilot.ledger import Delivery
from bench.pilot.load_client import AdsClient, DeltaClient, ParseCache, ProxySpec, SotwClient

FLUSH_S = 0.02
# The xDS protocol the simulated sidecars speak, by Istio's mesh config name for it.
CLIENTS: dict[str, type[AdsClient]] = {"GRPC": SotwClient, "DELTA_GRPC": DeltaClient}


class _Sender:
    """Owns the pipe's sending end from a thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="load-sender", daemon=True)
        self._thread.start()

    def send(self, message: tuple[Any, ...]) -> None:
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            try:
                self._conn.send(message)
            except (BrokenPipeError, EOFError, OSError):
                return


async def _commands(conn: Connection) -> asyncio.Queue[tuple[Any, ...]]:
    """Messages from the parent, delivered on the loop as the pipe becomes readable."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), readable)
    return inbox


async def _run(specs: list[ProxySpec], target: str, api: str, conn: Connection, sender: _Sender) -> None:
    pending: list[Delivery] = []
    cache = ParseCache()
    clients = [CLIENTS[api](spec, target, pending.append, cache) for spec in specs]
    inbox = await _commands(conn)
    sender.send(("ready", os.getpid()))
    while (await inbox.get())[0] != "connect":
        pass
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop), name=f"proxy-{c.spec.index}") for c in clients]

    async def flush() -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if pending:
                batch = pending[:]
                pending.clear()
                sender.send(("deliveries", batch))

    flusher = asyncio.create_task(flush(), name="flush")
    try:
        while (await inbox.get())[0] != "stop":
            pass
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        if pending:
            sender.send(("deliveries", pending[:]))
    crashed = [repr(r) for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    sender.send(("stopped", {"streams": sum(c.streams for c in clients),
                             "errors": [e for c in clients for e in c.errors][:20] + crashed[:20],
                             "parsed": cache.parsed}))


def main(specs: list[ProxySpec], target: str, api: str, conn: Connection) -> None:
    """The worker process's entry point (multiprocessing, spawn)."""
    import uvloop

    sender = _Sender(conn)
    try:
        uvloop.run(_run(specs, target, api, conn, sender))
    except BaseException:
        sender.send(("failed", traceback.format_exc()))
        raise
    finally:
        sender.close()
