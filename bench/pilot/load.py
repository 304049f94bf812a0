"""Pilot's load tool: N simulated sidecars over several worker processes, one ADS stream each.

    python -m bench.pilot.load --pilot 127.0.0.1:15010 --nats-url nats://127.0.0.1:4222 \\
        --proxies 1000 --services 1000 --endpoints 3 --processes 4 --vs-changes 5 --endpoint-changes 5

With `--nats-url` the tool first writes the generated mesh (see `scale_mesh`) into NATS and
keeps its workload registrations refreshed; without it, it only connects the proxies (their
node IPs still follow `scale_mesh`'s layout).  It then opens every stream at once, waits until
each proxy has ACKed CDS, EDS, LDS and RDS, and optionally makes VirtualService and endpoint
changes one at a time, timing each until every proxy has ACKed it (see `scale`).  Prints a
summary; `--json` writes it.

The proxies run in `--processes` spawned worker processes (`load_worker`), so the load
generator's Python does not compete with itself in one GIL; each worker reports every
response its proxies received (monotonic arrival and ACK times) to this process's `Ledger`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.pilot import load_worker
from bench.pilot.ledger import Ledger
from bench.pilot.load_client import ProxySpec
from bench.pilot.measure import sample

T = TypeVar("T")


class LoadError(RuntimeError):
    """A worker failed, or the proxies did not get where they were expected to."""


class LoadGenerator:
    """The parent side: spawns the workers, feeds the ledger, answers waits."""

    def __init__(self, target: str, specs: list[ProxySpec], *, processes: int = 4, api: str = "GRPC") -> None:
        if api not in load_worker.CLIENTS:
            raise ValueError(f"api {api!r} is not one of {sorted(load_worker.CLIENTS)}")
        self.target = target
        self.api = api
        self.specs = specs
        self.ledger = Ledger(len(specs))
        self.processes = max(1, min(processes, len(specs)))
        self._workers: list[tuple[BaseProcess, Connection]] = []
        self._ready: set[int] = set()
        self._stopped: dict[int, dict[str, Any]] = {}
        self._failure: str | None = None
        # Set whenever a worker reports anything: waits wake on news instead of polling.
        self._news = asyncio.Event()
        self.connected_at = 0.0

    async def start(self, timeout_s: float = 60.0) -> None:
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for i in range(self.processes):
            mine, theirs = context.Pipe()
            process = context.Process(target=load_worker.main, name=f"load-worker-{i}",
                                      args=(self.specs[i::self.processes], self.target, self.api, theirs), daemon=True)
            process.start()
            theirs.close()
            self._workers.append((process, mine))
            loop.add_reader(mine.fileno(), self._readable, i, mine)
        await self.wait(lambda: len(self._ready) == self.processes or None, timeout_s, "load workers ready")

    def _readable(self, worker: int, conn: Connection) -> None:
        self._news.set()
        try:
            while conn.poll():
                message = conn.recv()
                kind = message[0]
                if kind == "deliveries":
                    self.ledger.add(message[1])
                elif kind == "ready":
                    self._ready.add(worker)
                elif kind == "stopped":
                    self._stopped[worker] = message[1]
                elif kind == "failed":
                    self._failure = f"load worker {worker} failed:\n{message[1]}"
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
            if worker not in self._stopped and self._failure is None:
                self._failure = f"load worker {worker} exited unexpectedly"

    def cpu_s(self) -> float:
        """CPU seconds the workers have used so far (they share the machine with pilot)."""
        return sum(sample(p.pid).cpu_s for p, _ in self._workers if p.pid is not None and p.is_alive())

    def connect(self) -> float:
        """Open every proxy's stream now; return the moment (monotonic)."""
        self.connected_at = time.monotonic()
        for _, conn in self._workers:
            conn.send(("connect",))
        return self.connected_at

    async def wait(self, check: Callable[[], T | None], timeout_s: float, what: str) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            self._news.clear()
            if self._failure is not None:
                raise LoadError(self._failure)
            result = check()
            if result is not None:
                return result
            # Only news from a worker can change the answer.
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._news.wait(), max(0.0, remaining))
            except TimeoutError:
                raise LoadError(f"timed out after {timeout_s}s waiting for {what}; proxies' last ACKed versions: "
                                f"{self.ledger.latest()}") from None

    async def stop(self, timeout_s: float = 20.0) -> dict[str, Any]:
        """Close every stream, end the workers (killing any that hang); their stream counts
        and errors."""
        for process, conn in self._workers:
            if process.is_alive():
                with contextlib.suppress(BrokenPipeError, OSError):
                    conn.send(("stop",))
        alive = [i for i, (p, _) in enumerate(self._workers) if p.is_alive()]

        def all_stopped() -> bool | None:
            return all(i in self._stopped or not self._workers[i][0].is_alive() for i in alive) or None

        with contextlib.suppress(LoadError):
            await self.wait(all_stopped, timeout_s, "load workers to stop")
        loop = asyncio.get_running_loop()
        for process, conn in self._workers:
            loop.remove_reader(conn.fileno())
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            conn.close()
        self._workers = []
        return {"streams_opened": sum(s.get("streams", 0) for s in self._stopped.values()),
                "errors": [e for s in self._stopped.values() for e in s.get("errors", [])][:20],
                "distinct_resources_parsed": sum(s.get("parsed", 0) for s in self._stopped.values())}

    async def __aenter__(self) -> LoadGenerator:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# -- the command line --------------------------------------------------------------------------------


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pilot.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pilot", required=True, help="pilot's xDS address, host:port")
    parser.add_argument("--pilot-monitoring", help="pilot's monitoring URL (http://host:port), for its debounce")
    parser.add_argument("--nats-url", help="write the generated mesh into this NATS first (and keep it registered)")
    parser.add_argument("--proxies", type=int, default=100)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--endpoints", type=int, default=3, help="workloads per service")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--static-endpoints", action="store_true",
                        help="ServiceEntries with inline endpoints instead of workloadSelector + registrations")
    parser.add_argument("--processes", type=int, default=4, help="worker processes the proxies are spread over")
    parser.add_argument("--api", choices=("GRPC", "DELTA_GRPC"), default="GRPC",
                        help="the sidecars' xDS protocol: state of the world (GRPC) or delta (DELTA_GRPC)")
    parser.add_argument("--vs-changes", type=int, default=0, help="VirtualService changes to time, one at a time")
    parser.add_argument("--endpoint-changes", type=int, default=0,
                        help="workload registrations to add/remove and time, one at a time")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for each convergence")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.pilot import scale as scenarios
    from bench.pilot.scale_mesh import MeshScale, MeshWriter

    mesh = MeshScale(services=args.services, endpoints=args.endpoints, namespaces=args.namespaces,
                     static=args.static_endpoints)
    writer = await MeshWriter.connect(args.nats_url) if args.nats_url else None
    try:
        if writer is not None:
            await writer.write_mesh(mesh)
            writer.start_refreshing()
        if (args.vs_changes or args.endpoint_changes) and writer is None:
            raise SystemExit("--vs-changes and --endpoint-changes need --nats-url")
        results: dict[str, Any] = {"proxies": args.proxies, "services": args.services, "endpoints": args.endpoints,
                                   "processes": args.processes, "api": args.api}
        async with httpx.AsyncClient(timeout=10.0) as client, \
                LoadGenerator(args.pilot, mesh.proxies(args.proxies), processes=args.processes,
                              api=args.api) as load:
            results["initial_sync"] = await scenarios.initial_sync(load, timeout_s=args.timeout)
            probe = scenarios.PilotProbe(client, args.pilot_monitoring) if args.pilot_monitoring else None
            if args.vs_changes and writer is not None:
                results["virtual_service_changes"] = await scenarios.virtual_service_changes(
                    load, writer, mesh, args.vs_changes, probe=probe, timeout_s=args.timeout)
            if args.endpoint_changes and writer is not None:
                results["endpoint_changes"] = await scenarios.endpoint_changes(
                    load, writer, mesh, args.endpoint_changes, probe=probe, timeout_s=args.timeout)
            results["final_versions"] = load.ledger.latest()
            results["nacks"] = load.ledger.nacks
        results["streams"] = await load.stop()
        return results
    finally:
        if writer is not None:
            await writer.close()


def main(argv: list[str] | None = None) -> int:
    import uvloop

    args = _args(sys.argv[1:] if argv is None else argv)
    results = uvloop.run(_run(args))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
