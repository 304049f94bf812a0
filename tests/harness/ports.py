"""Free loopback ports.

Not from the kernel's ephemeral range (bind to port 0): every outgoing connection takes its
local port from that range too, so a port handed out there can be taken by some client's
connection before the process meant to listen on it binds, and that process fails with
"address already in use" (CI saw an Envoy admin port lost this way).  Ports come from below
the range instead, each handed out once per test run, and are checked free when handed out.
"""

from __future__ import annotations

import random
import socket

# Below Linux's default ephemeral range (32768-60999) and Kubernetes' NodePorts (30000+).
LOW, HIGH = 20000, 29999
_handed_out: set[int] = set()


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    for _ in range(1000):
        port = random.randint(LOW, HIGH)
        if port not in _handed_out and _free(host, port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH} on {host} after 1000 tries")
