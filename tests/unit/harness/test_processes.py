"""The test harness's process group: every process stopped, the services together and the
foundations (NATS, Redis) only once the services are gone."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

# Listens on the port in `sys.argv[1]` until SIGTERM (which ends it at once).
_FOUNDATION = """
import socket, sys, time
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    time.sleep(1)
"""

# Takes SIGTERM, then exits a moment later, writing whether the foundation still answered.
_SERVICE = """
import signal, socket, sys, time
def leave(*_):
    time.sleep(0.3)
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2).close()
        answer = "answered"
    except OSError:
        answer = "gone"
    open(sys.argv[1], "w").write(answer)
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
open(sys.argv[1] + ".ready", "w").close()
while True:
    time.sleep(1)
"""


def test_services_stop_together_before_the_foundations_they_talk_to(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path)
    port = free_port()
    foundation = group.start("foundation", [sys.executable, "-c", _FOUNDATION, str(port)], foundation=True)
    marks = [tmp_path / f"service-{n}" for n in range(3)]
    services = [group.start(f"service-{n}", [sys.executable, "-c", _SERVICE, str(mark), str(port)])
                for n, mark in enumerate(marks)]
    try:
        wait_until(lambda: all(Path(f"{m}.ready").exists() for m in marks) and _answers(port), timeout=15,
                   what="the services and the foundation ready")
    finally:
        group.stop_all()
    assert [m.read_text() for m in marks] == ["answered"] * 3
    assert all(p.popen.returncode is not None for p in [foundation, *services])
    assert [p.popen.returncode for p in services] == [0, 0, 0]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
