"""The local mesh's workload registry: what agents write to mesh-workloads becomes EDS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.bus import MESH_WORKLOADS, Bus, BusSettings
from libs.config.workloads import WorkloadRegistration
from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.mesh import Mesh, Proxy
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.upstreams import gateway
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

# Long enough that a loaded machine does not expire a registration the test still wants
# between its refreshes; short enough to wait out.
TTL_S = 5.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfigEnv]:
    """This module's own control plane: pilot with a short registry TTL."""
    base = tmp_path_factory.mktemp("registry")
    (base / "logs").mkdir()
    group = ProcessGroup(base / "logs")
    try:
        nats = start_nats(group, base / "nats")
        (base / "mesh").mkdir()
        mesh = Mesh(group, nats, base / "mesh")
        config = base / "config"
        config.mkdir()
        yield ConfigEnv.start(mesh, config, pilot_args=("--workload-ttl-s", str(TTL_S)))
    finally:
        group.stop_all()


def register(nats_url: str, registration: WorkloadRegistration, *, delete: bool = False) -> None:
    async def write() -> None:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test-agent")
        try:
            bucket = await bus.kv(MESH_WORKLOADS, ttl_s=TTL_S, expiry_markers_s=TTL_S)
            if delete:
                await bucket.delete(registration.key)
            else:
                await bucket.put(registration.key, registration.to_json())
        finally:
            await bus.close()

    asyncio.run(write())


SERVICE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: ratings.default.svc.cluster.local}}]}]
"""


def push_contexts(env: ConfigEnv) -> float:
    for line in env.pilot.get("/metrics").text.splitlines():
        if line.startswith("pilot_push_contexts_total "):
            return float(line.split()[1])
    raise AssertionError("pilot_push_contexts_total not exported")


def test_registered_workloads_become_endpoints_and_expire(env: ConfigEnv, tmp_path: Path) -> None:
    proxy: Proxy = env.add_proxy(env.mesh.proxy(env.pilot, name="ingressgateway", node_type="router",
                                                namespace="istio-system", labels={"istio": "ingressgateway"}))
    port = free_port()
    env.apply("gw", gateway(port))
    env.apply("ratings", SERVICE)
    with EchoServer("ratings-1") as first, EchoServer("ratings-2") as second:
        def answer() -> str | None:
            response = HTTP.get(f"http://127.0.0.1:{port}/", timeout=5)
            return response.headers.get("x-upstream") if response.status_code == 200 else None

        def answers(*refreshed: WorkloadRegistration) -> set[str | None]:
            """Who answers ten requests, the `refreshed` workloads re-registered first (as
            their agents keep doing) so that only the ones left out can expire."""
            for registration in refreshed:
                register(env.mesh.nats.url, registration)
            return {answer() for _ in range(10)}

        workload = WorkloadRegistration("ratings-1", "default", first.host, {"app": "ratings"},
                                        ports={"http": first.port})
        register(env.mesh.nats.url, workload)
        assert wait_until(answer, what="the registered workload to serve") == "ratings-1"
        # Refreshing without change is not a push: pilot builds no new push context.
        register(env.mesh.nats.url, workload)
        pushes_before = push_contexts(env)
        version = env.sync()
        register(env.mesh.nats.url, workload)
        register(env.mesh.nats.url, workload)
        assert env.sync() == version
        assert push_contexts(env) == pushes_before
        # A second workload joins...
        joining = WorkloadRegistration("ratings-2", "default", second.host, {"app": "ratings"},
                                       ports={"http": second.port})
        wait_until(lambda: answers(workload, joining) == {"ratings-1", "ratings-2"}, what="both workloads")
        # ...the first leaves explicitly, the second stops refreshing and expires.
        register(env.mesh.nats.url, workload, delete=True)
        wait_until(lambda: answers(joining) == {"ratings-2"}, what="ratings-1 to leave")
        wait_until(lambda: HTTP.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 503,
                   timeout=TTL_S * 5, what="the unrefreshed workload to expire")
    assert proxy.process.alive()
