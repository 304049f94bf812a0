"""Two pilots behind one xDS address (SO_REUSEPORT on one host): both compute the same
versions from the same config, and when the one a proxy is on dies (SIGKILL) the proxy
reconnects to the other and traffic through it never fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import PilotService, Proxy
from tests.harness.ports import free_port
from tests.harness.routing import answered_by, ask, documents, gateway_yaml, version_subsets, virtual_service
from tests.harness.traffic import Load
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

HOST = "replicas.test"


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, EchoServer]]:
    servers = {v: EchoServer(f"replicas-{v}").start() for v in ("v1", "v2")}
    yield servers
    for server in servers.values():
        server.stop()


def config(upstreams: dict[str, EchoServer], ports: list[int], subset: str) -> str:
    route = f"- route: [{{destination: {{host: replicas.default.svc.cluster.local, subset: {subset}}}}}]"
    return documents(
        gateway_yaml("gw", ports),
        service_entry("replicas.default.svc.cluster.local",
                      [Workload(s, {"app": "replicas", "version": v}) for v, s in upstreams.items()]),
        version_subsets("replicas.default.svc.cluster.local", "v1", "v2"),
        virtual_service("replicas", route, hosts=[HOST]),
    )


def holder(pilots: list[PilotService], proxy: Proxy) -> PilotService | None:
    """The pilot whose /debug/syncz lists `proxy` as connected."""
    for pilot in pilots:
        if any(p["proxy"] == proxy.node_id for p in pilot.get("/debug/syncz").json()["proxies"]):
            return pilot
    return None


def test_a_proxy_moves_to_the_surviving_pilot_without_a_failed_request(
        env: ConfigEnv, upstreams: dict[str, EchoServer]) -> None:
    first = env.pilot
    # One gateway per xDS protocol: both must survive the move.  They connect before the
    # second replica starts, so they are all on the first.
    ports = {"sotw": free_port(), "delta": free_port()}
    gateways = {api: env.add_proxy(env.mesh.proxy(first, name=f"gw-{api}", node_type="router",
                                                  namespace="istio-system", labels={"istio": "ingressgateway"},
                                                  xds_api="GRPC" if api == "sotw" else "DELTA_GRPC"))
                for api in ports}
    env.apply("replicas", config(upstreams, list(ports.values()), "v1"))
    second = env.mesh.pilot(name="pilot-replica", xds_port=first.xds_port)
    pilots = [first, second]
    for port in ports.values():
        wait_until(lambda p=port: answered_by(ask(p, HOST)) == "upstream:replicas-v1",  # type: ignore[misc]
                   what="both gateways to route to v1")

    # The same config gives the same version on both replicas: whichever a proxy lands on,
    # it is not sent what it already holds under another name.
    wait_until(lambda: len({p.get("/debug/syncz").json()["version"] for p in pilots}) == 1,
               what="both pilots to serve the same version")

    assert all(holder(pilots, proxy) is first for proxy in gateways.values())
    victim, survivor = first, second
    loads = [Load(lambda client, p=port: ask(p, HOST, client=client), clients=2)  # type: ignore[misc]
             for port in ports.values()]
    for load in loads:
        load.__enter__()
    try:
        wait_until(lambda: all(load.total() >= 20 for load in loads), what="traffic through both gateways")
        victim.process.kill()
        env.pilot = survivor
        wait_until(lambda: all(holder([survivor], proxy) for proxy in gateways.values()), timeout=30,
                   what="every gateway to reconnect to the surviving pilot")
        env.sync()
        before = [load.total() for load in loads]
        wait_until(lambda: all(load.total() >= n + 20 for load, n in zip(loads, before, strict=True)),
                   what="traffic after the move")
        # Config applied after the move reaches both gateways through the survivor.
        env.apply("replicas", config(upstreams, list(ports.values()), "v2"))
        for port in ports.values():
            wait_until(lambda p=port: answered_by(ask(p, HOST)) == "upstream:replicas-v2",  # type: ignore[misc]
                       what="both gateways to route to v2 after the move")
    finally:
        for load in loads:
            load.__exit__()
    for load in loads:
        assert load.failures == [], load.summary()
    assert env.nacks() == []
