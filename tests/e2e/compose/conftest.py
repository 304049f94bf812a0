"""One compose mesh for this package: the images built once per run (`make images`' code,
from the cached local base), docker-compose.yml up under a project name of the suite's own
with host ports of its own on 127.0.0.1, and everything it created (containers, network,
volumes) removed after the package's last test, whatever happened.  Not kept for the
session: idle, its ~28 containers and their health checks took most of a core from every
test that ran after it.  Without a Docker engine the suite skips,
saying what is missing; under CI=true that is a failure.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.e2e.bookinfo_tasks import TASKS
from tests.e2e.compose.harness import BookinfoOnCompose
from tests.harness.ports import free_port
from tools.containers import images
from tools.containers.base import BaseUnavailable
from tools.containers.compose import ComposeMesh, HostPorts, record_context
from tools.containers.engine import ContainerError, Engine, EngineUnavailable, find_engine


def _unavailable(reason: str) -> NoReturn:
    message = f"no compose mesh here: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _say(text: str) -> None:
    print(f"[compose e2e] {text}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        return find_engine()
    except EngineUnavailable as missing:
        _unavailable(str(missing))


@pytest.fixture(scope="session")
def built_images(engine: Engine) -> images.Images:
    """mizzen:<hash> and mizzen-bookinfo:<hash> of this checkout: built once per run, and
    not at all when a build of the same content exists.  FROM the Debian base built here
    (cached; IMAGE_BASE=python-slim or auto to pull instead), and `:latest` left alone."""
    try:
        return images.build(engine=engine, base_choice=os.environ.get("IMAGE_BASE", "debian"), say=_say,
                            tag_latest=False)
    except BaseUnavailable as missing:
        _unavailable(str(missing))


@pytest.fixture(scope="package")
def compose_mesh(engine: Engine, built_images: images.Images) -> Iterator[ComposeMesh]:
    ports = HostPorts(ingress=free_port(), galley=free_port(), pilot=free_port(), telemetry=free_port(),
                      zipkin=free_port())
    mesh = ComposeMesh(engine, f"mizzen-e2e-{secrets.token_hex(3)}", ports, built_images.mizzen,
                       built_images.bookinfo)
    try:
        mesh.up()
        _say(f"{mesh.project} ready in {mesh.wait_ready():.0f} s")
        yield mesh
    finally:
        try:
            mesh.down()
        except ContainerError as exc:
            _say(f"tearing down {mesh.project} failed: {exc}")
            raise
        leftovers = engine("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={mesh.project}")
        volumes = engine("volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={mesh.project}")
        networks = engine("network", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={mesh.project}")
        assert not (leftovers.stdout.split() or volumes.stdout.split() or networks.stdout.split()), (
            f"{mesh.project} left containers {leftovers.stdout.split()}, volumes {volumes.stdout.split()}, "
            f"networks {networks.stdout.split()}")


@pytest.fixture(scope="package")
def bookinfo_on_compose(compose_mesh: ComposeMesh, tmp_path_factory: pytest.TempPathFactory) -> BookinfoOnCompose:
    """mizzenctl pointed at the mesh by the context `compose up` records (in the suite's
    own config home), and Bookinfo's subsets applied."""
    mesh = BookinfoOnCompose(compose_mesh, tmp_path_factory.mktemp("compose-mizzenctl"))
    record_context(compose_mesh, "compose", mesh.environ)
    mesh.apply(TASKS / "destination-rule-all.yaml")
    return mesh


@pytest.fixture
def bookinfo(bookinfo_on_compose: BookinfoOnCompose) -> Iterator[BookinfoOnCompose]:
    """Each test starts from Bookinfo with its subsets and no task VirtualService."""
    bookinfo_on_compose.reset()
    try:
        yield bookinfo_on_compose
    finally:
        bookinfo_on_compose.reset()

