"""A real redis-server (Debian's) on loopback, for redisquota: no persistence, so a test's
counts live exactly as long as its server."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from tests.harness.debian import debian_tool
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    process: Process
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as connection:
            connection.sendall(b"FLUSHALL\r\n")
            assert connection.recv(16).startswith(b"+OK")


def start_redis(group: ProcessGroup, work_dir: Path, *, name: str = "redis", port: int | None = None) -> RedisServer:
    """A redis-server; `port` given (a stopped server's): clients configured for it reconnect."""
    binary = debian_tool("redis-server", "redis-server")
    work_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = group.start(name, [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(work_dir)], foundation=True)
    wait_until(lambda: _pong(port), timeout=15, what=f"{name} to answer PING")
    return RedisServer(process, port)
