"""The load tool's simulated sidecars open their xDS connection as a real Envoy does.

Pilot's cost per proxy depends on what the client's HTTP/2 layer asks of it: a client that
grows its flow-control window by pinging makes pilot answer pings and window updates a real
sidecar never sends.  So the settings each announces in its first frames are read off the
wire, from a real Envoy booted with the agent's bootstrap and from the load tool's channel,
and compared.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench.pilot.load_client import CHANNEL_OPTIONS
from libs.envoy.binaries import envoy_binary
from services.agent.bootstrap import bootstrap_json
from services.agent.settings import AgentSettings
from tests.harness.ports import free_port

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, WINDOW_UPDATE = 0x4, 0x6, 0x8
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 0x4, 0x5


@dataclass
class Opening:
    """What a client's first frames announce."""

    settings: dict[int, int] = field(default_factory=dict)
    connection_window_increment: int = 0
    pings: int = 0


def read_opening(connect: Callable[[int], object], timeout_s: float = 10.0) -> Opening:
    """Listen on a free loopback port, let `connect` dial it, and read what the client
    writes before it would need an answer (its preface, SETTINGS, WINDOW_UPDATE)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(timeout_s)
        port = server.getsockname()[1]
        dialer = threading.Thread(target=connect, args=(port,), daemon=True)
        dialer.start()
        connection, _ = server.accept()
        with connection:
            connection.settimeout(1.0)
            data = b""
            while len(data) < 4096:
                try:
                    chunk = connection.recv(4096)
                except TimeoutError:
                    break
                if not chunk:
                    break
                data += chunk
    assert data.startswith(PREFACE), f"not an HTTP/2 client preface: {data[:24]!r}"
    opening = Opening()
    at = len(PREFACE)
    while at + 9 <= len(data):
        length = int.from_bytes(data[at:at + 3], "big")
        kind, stream = data[at + 3], int.from_bytes(data[at + 5:at + 9], "big") & 0x7FFFFFFF
        payload = data[at + 9:at + 9 + length]
        if kind == SETTINGS:
            for offset in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[offset:offset + 6])
                opening.settings[key] = value
        elif kind == WINDOW_UPDATE and stream == 0:
            opening.connection_window_increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        elif kind == PING:
            opening.pings += 1
        at += 9 + length
    return opening


def _dial_with_grpc(port: int) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=3)
    except grpc.FutureTimeoutError:
        pass  # The listener never answers: its bytes were all this needed.
    finally:
        channel.close()


def test_the_load_tools_sidecars_announce_envoys_flow_control(tmp_path: Path) -> None:
    admin_port = free_port()
    envoys: list[subprocess.Popen[bytes]] = []

    def dial_with_envoy(port: int) -> None:
        settings = AgentSettings(pilot_address=f"127.0.0.1:{port}", sds_enabled=False, admin_port=admin_port,
                                 admin_address="127.0.0.1", stats_port=0, health_port=0)
        bootstrap = tmp_path / "bootstrap.json"
        bootstrap.write_text(bootstrap_json(settings))
        envoys.append(subprocess.Popen(
            [str(envoy_binary()), "-c", str(bootstrap), "--base-id", str(admin_port), "-l", "error",
             "--concurrency", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    try:
        envoy = read_opening(dial_with_envoy)
    finally:
        for process in envoys:
            process.kill()
            process.wait(timeout=10)
    simulated = read_opening(_dial_with_grpc)

    assert envoy.settings.get(INITIAL_WINDOW_SIZE), f"Envoy announced no stream window: {envoy}"
    assert simulated.settings.get(INITIAL_WINDOW_SIZE) == envoy.settings[INITIAL_WINDOW_SIZE], (envoy, simulated)
    # Neither raises its frame size (gRPC does when it probes bandwidth) nor pings to begin with.
    assert MAX_FRAME_SIZE not in envoy.settings and MAX_FRAME_SIZE not in simulated.settings, (envoy, simulated)
    assert envoy.pings == simulated.pings == 0
    # Both open the connection's window at least as wide as a stream's.
    for opening in (envoy, simulated):
        assert opening.connection_window_increment + 65_535 >= opening.settings[INITIAL_WINDOW_SIZE], opening
