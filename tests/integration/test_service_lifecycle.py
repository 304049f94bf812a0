"""Every service's skeleton: probes, metrics, readiness gated on state, clean SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.harness.mesh import Mesh
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration


def test_probes_metrics_and_graceful_stop(mesh: Mesh, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    galley = mesh.galley(config)
    pilot = mesh.pilot()
    for service in (galley, pilot):
        assert service.get("/healthz").status_code == 200
        assert service.get("/readyz").json() == {"ready": True, "pending": []}
    assert "galley_resources" in galley.get("/metrics").text
    assert "pilot_push_contexts_total" in pilot.get("/metrics").text
    for service in (pilot, galley):
        service.process.popen.send_signal(signal.SIGTERM)
        assert service.process.popen.wait(timeout=10) == 0


def test_unready_until_nats_comes_then_ready(processes: ProcessGroup, tmp_path: Path) -> None:
    """Started before NATS, pilot is alive but unready (it must not serve an empty config),
    says why in its log, and becomes ready once NATS appears."""
    monitoring, nats_port = free_port(), free_port()
    pilot = processes.python("pilot", "services.pilot", "--nats-url", f"nats://127.0.0.1:{nats_port}",
                             "--monitoring-address", "127.0.0.1", "--monitoring-port", str(monitoring),
                             "--xds-port", str(free_port()), "--log-json")
    readyz = f"http://127.0.0.1:{monitoring}/readyz"
    body = wait_until(lambda: httpx.get(readyz, timeout=1).json(), what="pilot's /readyz")
    assert body == {"ready": False, "pending": ["config-synced", "nats-connected", "registries-synced"]}
    wait_until(lambda: "nats error" in pilot.log(), what="pilot to log the failed NATS connection")
    start_nats(processes, tmp_path / "nats", port=nats_port)
    wait_until(lambda: httpx.get(readyz, timeout=1).status_code == 200, what="pilot to become ready")
    assert pilot.alive()
