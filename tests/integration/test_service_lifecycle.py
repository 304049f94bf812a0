"""Every service's skeleton: probes, metrics, readiness gated on state, clean SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.harness.http import HTTP
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
    body = wait_until(lambda: HTTP.get(readyz, timeout=1).json(), what="pilot's /readyz")
    assert body == {"ready": False, "pending": ["config-synced", "nats-connected", "registries-synced"]}
    wait_until(lambda: "nats error" in pilot.log(), what="pilot to log the failed NATS connection")
    start_nats(processes, tmp_path / "nats", port=nats_port)
    wait_until(lambda: HTTP.get(readyz, timeout=1).status_code == 200, what="pilot to become ready")
    assert pilot.alive()


def test_unready_while_nats_is_away_past_the_grace_then_ready_again(processes: ProcessGroup, tmp_path: Path) -> None:
    """A service that has lost its source of truth says so on /readyz, and recovers."""
    nats = start_nats(processes, tmp_path / "nats")
    mesh = Mesh(processes, nats, tmp_path / "mesh")
    (tmp_path / "mesh").mkdir()
    (tmp_path / "config").mkdir()
    services = [mesh.galley(tmp_path / "config", "--nats-grace-s", "0.5"), mesh.pilot("--nats-grace-s", "0.5")]
    nats.process.stop()
    for service in services:
        wait_until(lambda s=service: s.get("/readyz").json() == {"ready": False, "pending": ["nats-connected"]},  # type: ignore[misc]
                   timeout=30, what=f"{service.process.name} to turn unready")
    start_nats(processes, tmp_path / "nats", port=nats.port, name="nats-again")
    for service in services:
        wait_until(lambda s=service: s.get("/readyz").status_code == 200, timeout=30,  # type: ignore[misc]
                   what=f"{service.process.name} to be ready again")
