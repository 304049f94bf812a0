"""`--registries` names what pilot follows: a name it does not know stops it at start,
saying which setting is wrong and what the choices are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup

pytestmark = pytest.mark.integration


def test_an_unknown_registry_stops_pilot_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    group = ProcessGroup(tmp_path / "logs")
    try:
        nats = start_nats(group, tmp_path / "nats")
        result = subprocess.run(
            [sys.executable, "-m", "services.pilot", "--nats-url", nats.url, "--registries", "nats,consul",
             "--xds-address", "127.0.0.1", "--xds-port", str(free_port()), "--monitoring-address", "127.0.0.1",
             "--monitoring-port", str(free_port()), "--log-json"],
            capture_output=True, text=True, timeout=60, check=False)
    finally:
        group.stop_all()
    assert result.returncode == 1, result.stderr
    assert "--registries / MIZZEN_REGISTRIES" in result.stderr
    assert "consul unknown; choose from nats, kubernetes" in result.stderr
