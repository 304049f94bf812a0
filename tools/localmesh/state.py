"""The running mesh's state file, `<state-dir>/mesh.json`: who runs it, its processes,
and where to reach it.  `mizzenctl down` and `status` read it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "mesh.json"


@dataclass
class ProcessState:
    name: str
    pid: int | None
    log: str
    restarts: int = 0
    # The exit code of its last exit (None: never exited), and whether it keeps exiting
    # soon after each start (`mizzenctl status` then shows the end of its log).
    last_exit: int | None = None
    crash_looping: bool = False


@dataclass
class MeshState:
    pid: int
    status: str
    ingress: str
    galley: str
    pilot: str
    processes: list[ProcessState] = field(default_factory=list)
    proxies: list[str] = field(default_factory=list)
    app: str = "bookinfo"
    capture: str = "proxy"
    subnet: int = 0
    nats: str = ""
    # Istio's metrics and the service graph; the Zipkin API.
    telemetry: str = ""
    zipkin: str = ""
    # The policy service's monitoring (/metrics: checks, quota decisions, cache hit rate).
    policy: str = ""
    # Every control-plane service's monitoring URL (/healthz, /metrics, /version), by name.
    monitoring: dict[str, str] = field(default_factory=dict)

    def write(self, state_dir: Path) -> None:
        path = state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        os.replace(temporary, path)

    @classmethod
    def read(cls, state_dir: Path) -> MeshState | None:
        path = state_dir / STATE_FILE
        try:
            body: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        processes = [ProcessState(**p) for p in body.pop("processes", [])]
        return cls(processes=processes, **body)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
