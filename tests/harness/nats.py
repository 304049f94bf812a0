"""A real nats-server with JetStream, in a temp dir, on a free port."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from libs.envoy.binaries import nats_server_binary
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until


@dataclass
class NatsServer:
    process: Process
    port: int
    store_dir: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def _speaks_nats(port: int) -> bool:
    """The server greets with INFO; JetStream is up once INFO says so."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        greeting = b""
        while not greeting.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                return False
            greeting += chunk
        return greeting.startswith(b"INFO") and b'"jetstream":true' in greeting


def start_nats(group: ProcessGroup, store_dir: Path, *, port: int | None = None, name: str = "nats") -> NatsServer:
    port = port or free_port()
    store_dir.mkdir(parents=True, exist_ok=True)
    process = group.start(name, [str(nats_server_binary()), "-js", "-a", "127.0.0.1", "-p", str(port),
                                 "-sd", str(store_dir)], foundation=True)
    wait_until(lambda: _speaks_nats(port), timeout=15, what=f"nats-server on port {port}")
    return NatsServer(process, port, store_dir)
