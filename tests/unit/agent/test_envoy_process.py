"""How the agent starts Envoy: the drain time follows proxyConfig's drainDuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.agent.envoy_process import EnvoyProcess


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.mark.parametrize(("drain_s", "drain", "parent"), [(1.0, "1", "2"), (45.0, "45", "46"), (0.2, "1", "2")])
def test_drain_and_parent_shutdown_times(drain_s: float, drain: str, parent: str) -> None:
    command = EnvoyProcess(Path("/tmp/bootstrap.json"), drain_time_s=drain_s).command()
    assert (flag(command, "--drain-time-s"), flag(command, "--parent-shutdown-time-s")) == (drain, parent)
    assert flag(command, "--drain-strategy") == "immediate"
