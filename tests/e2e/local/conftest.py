"""One local mesh (`mizzenctl up -d`) for this package's modules, in its own subnet so a
developer's `make demo` can keep running; config applied by a test is deleted after it.
It goes down after the package's last test, not at the end of the session: idle, it would
take CPU from every test that runs after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.local_mesh import LocalMesh

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "bookinfo" / "networking"
SECURITY_SAMPLES = SAMPLES.parent / "security"
POLICY_SAMPLES = SAMPLES.parent / "policy"
SUBNET = 77


@pytest.fixture(scope="package")
def local_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = LocalMesh(tmp_path_factory.mktemp("local-mesh"), SUBNET)
    started = mesh.up()
    try:
        assert started.returncode == 0, f"mizzenctl up -d failed:\n{started.stdout}\n{started.stderr}"
        yield mesh
    finally:
        mesh.down()


@pytest.fixture
def bookinfo(local_mesh: LocalMesh) -> Iterator[LocalMesh]:
    """The mesh with Bookinfo's subsets defined; every other resource a test applies is removed."""
    local_mesh.apply(SAMPLES / "destination-rule-all.yaml")
    try:
        yield local_mesh
    finally:
        local_mesh.delete_all(("virtualservices", "destinationrules", "serviceentries", "gateways",
                               "peerauthentications", "authorizationpolicies", "requestauthentications", "rules",
                               "handlers", "instances", "deniers", "listcheckers", "listentries", "checknothings",
                               "memquotas", "redisquotas", "quotas", "quotaspecs", "quotaspecbindings"))
        local_mesh.sync()
