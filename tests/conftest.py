"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.mesh import Mesh
from tests.harness.nats import NatsServer, start_nats
from tests.harness.processes import ProcessGroup

SHARED = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "istio"


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent without xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `-n`, keep each test file on one worker (xdist's `--dist loadfile`) unless another
    distribution was asked for.  Integration modules start their control plane, proxies and
    apps once per module, some on fixed addresses (127.0.30.x:19080 in test_sidecar): split
    across workers, a module runs twice at once and collides with itself."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadFileScheduling

    return LoadFileScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def mizzen_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """mizzenctl's contexts (which mesh it talks to) in a directory of the test run's own:
    a mesh a test starts must not become the developer's current context, and a
    developer's contexts must not steer the tests.  Subprocesses inherit it."""
    home = tmp_path_factory.mktemp("mizzen-config")
    before = os.environ.get("MIZZEN_CONFIG_HOME")
    os.environ["MIZZEN_CONFIG_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("MIZZEN_CONFIG_HOME", None)
        else:
            os.environ["MIZZEN_CONFIG_HOME"] = before


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessGroup]:
    """Every process a test starts; all stopped at teardown, logs printed on failure."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    group = ProcessGroup(log_dir)
    try:
        yield group
    finally:
        report = getattr(request.node, "report_call", None)
        group.stop_all()
        if report is not None and report.failed:
            print(group.logs())


@pytest.fixture
def nats(processes: ProcessGroup, tmp_path: Path) -> NatsServer:
    return start_nats(processes, tmp_path / "nats")


@pytest.fixture
def mesh(processes: ProcessGroup, nats: NatsServer, tmp_path: Path) -> Mesh:
    work = tmp_path / "mesh"
    work.mkdir()
    return Mesh(processes, nats, work)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"test data absent: Istio's conformance corpus (kept outside this repository) is not at {SHARED}")
    return SHARED
