"""One control plane per test module (nats, galley on a directory, pilot), shared by its
tests; each test's config is removed after it, so tests do not see each other's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Mesh, Proxy
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfigEnv]:
    base = tmp_path_factory.mktemp("pilot")
    (base / "logs").mkdir()
    group = ProcessGroup(base / "logs")
    failed_before = request.session.testsfailed
    try:
        nats = start_nats(group, base / "nats")
        mesh = Mesh(group, nats, base / "mesh")
        (base / "mesh").mkdir()
        config = base / "config"
        config.mkdir()
        yield ConfigEnv.start(mesh, config)
    finally:
        group.stop_all()
        if request.session.testsfailed > failed_before:
            print(group.logs())


@pytest.fixture
def config(env: ConfigEnv) -> Iterator[ConfigEnv]:
    """The shared control plane; whatever config the test applies is removed afterwards
    (config applied by module fixtures before the test stays)."""
    keep = env.checkpoint()
    try:
        yield env
    finally:
        env.clear(keep)


@pytest.fixture(scope="module")
def gateway(env: ConfigEnv) -> Proxy:
    """An ingress gateway (router proxy labelled istio=ingressgateway) on 127.0.0.1."""
    return env.add_proxy(env.mesh.proxy(env.pilot, name="ingressgateway", node_type="router",
                                        namespace="istio-system", labels={"istio": "ingressgateway"}))
