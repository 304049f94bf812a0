"""An agent started before citadel has written its root (the local mesh starts both in
one stage) waits for the file instead of exiting, then gets its certificate."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.citadel import identity_args, start_citadel
from tests.harness.mesh import Mesh
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths hold at most 107 bytes; pytest's tmp paths can be longer.
    path = Path(tempfile.mkdtemp(prefix="mz-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_agent_waits_for_citadels_root_file(mesh: Mesh, tmp_path: Path, short_dir: Path) -> None:
    citadel = start_citadel(mesh.group, mesh.nats.url, tmp_path / "citadel")
    pilot = mesh.pilot()
    token = citadel.token_file(tmp_path / "web.token", "default", "web")
    late_root = tmp_path / "not-yet" / "root-cert.pem"
    args = list(identity_args(citadel, token, sds_socket=short_dir / "sds.sock"))
    args[args.index("--citadel-root-cert") + 1] = str(late_root)
    proxy = mesh.proxy(pilot, name="web", bind_address="127.0.44.1", service_account="web", extra=tuple(args),
                       wait_live=False)
    wait_until(lambda: "waiting for citadel's root certificate" in proxy.process.log(),
               what="the agent to wait for the root file")
    assert proxy.process.alive()
    late_root.parent.mkdir()
    shutil.copyfile(citadel.root_file, late_root)
    wait_until(proxy.admin.ready, timeout=30, what="Envoy to go LIVE once the root is there")
    assert "workload certificate obtained" in proxy.process.log()
