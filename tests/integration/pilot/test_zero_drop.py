"""Zero drop: traffic keeps flowing through the gateway while config changes 200 times.

Two clients send requests without pause, one on a keep-alive connection and one on a new
connection each time, and record every answer.  Meanwhile a sequence of config changes
is applied, each a valid configuration on its own (as an operator would apply them) and
each waited for until every proxy ACKed it: routes moving between subsets and services,
weights changing, subsets and services added and removed, endpoints changing.  Every
request must succeed.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import ask, documents, gateway_yaml, virtual_service
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

CHANGES = 200
HOST = "zero-drop.test"


@dataclass
class Traffic:
    """Requests in a loop on a thread until stopped; every non-200 answer is a failure."""

    port: int
    keep_alive: bool
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    upstreams: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name=f"traffic-keepalive={self.keep_alive}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=15)

    def _one(self, client: httpx.Client) -> None:
        try:
            response = ask(self.port, HOST, "/", client=client)
        except httpx.HTTPError as exc:
            self.failures.append(f"{time.monotonic():.3f} {type(exc).__name__}: {exc}")
            return
        self.statuses[response.status_code] += 1
        self.upstreams[response.headers.get("x-upstream", "")] += 1
        if response.status_code != 200:
            self.failures.append(f"{time.monotonic():.3f} {response.status_code} "
                                 f"{response.headers.get('x-envoy-response-flags', '')} {response.text[:200]!r}")

    def _run(self) -> None:
        if self.keep_alive:
            with httpx.Client(timeout=10) as client:
                while not self._stop.is_set():
                    self._one(client)
        else:
            with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
                while not self._stop.is_set():
                    self._one(client)


@dataclass(frozen=True)
class State:
    """The whole config: services, alpha's subsets and load balancer, the route."""

    route: tuple[tuple[str, str, int], ...] = (("alpha", "v1", 100),)
    alpha_subsets: tuple[str, ...] = ("v1", "v2")
    alpha_lb: str = "ROUND_ROBIN"
    extra_services: tuple[str, ...] = ()
    alpha_extra_endpoint: bool = False


def _rule(service: str, subsets: tuple[str, ...], lb: str = "ROUND_ROBIN") -> str:
    # Subset v3 selects the same endpoints as v1: a new cluster for the same workloads.
    entries = "\n".join(f"  - {{name: {n}, labels: {{version: {'v1' if n == 'v3' else n}}}}}" for n in subsets)
    return f"""\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {service}, namespace: default}}
spec:
  host: {service}
  trafficPolicy: {{loadBalancer: {{simple: {lb}}}}}
  subsets:
{entries}
"""


def _route(targets: tuple[tuple[str, str, int], ...]) -> str:
    """(service, subset or "", weight) destinations of the one VirtualService."""
    destinations = "\n".join(
        f"  - destination: {{host: {svc}{f', subset: {subset}' if subset else ''}}}\n    weight: {weight}"
        for svc, subset, weight in targets)
    return virtual_service("zero-drop", f"- route:\n{destinations}", hosts=[HOST])


@dataclass
class Upstreams:
    alpha: dict[str, EchoServer]
    beta: dict[str, EchoServer]
    extra: dict[str, EchoServer]
    alpha_extra: EchoServer

    def config(self, state: State, port: int) -> str:
        alpha = [Workload(s, {"app": "alpha", "version": v}) for v, s in self.alpha.items()]
        if state.alpha_extra_endpoint:
            alpha.append(Workload(self.alpha_extra, {"app": "alpha", "version": "v2"}))
        parts = [gateway_yaml("gw", [port]),
                 service_entry("alpha.default.svc.cluster.local", alpha),
                 service_entry("beta.default.svc.cluster.local",
                               [Workload(s, {"app": "beta", "version": v}) for v, s in self.beta.items()])]
        parts += [service_entry(f"{name}.default.svc.cluster.local", [Workload(self.extra[name], {"app": name})])
                  for name in state.extra_services]
        parts += [_rule("alpha", state.alpha_subsets, state.alpha_lb), _rule("beta", ("v1", "v2")),
                  _route(state.route)]
        return documents(*parts)


def _steps() -> list[tuple[str, dict[str, object]]]:
    """One cycle of changes.  Galley writes a file's resources in key order (DestinationRule,
    Gateway, ServiceEntry, VirtualService), then deletes; pilot may push after any single
    write, so each step is valid in every intermediate state too: a step that adds a
    subset or a service and routes to it is one change, one that routes away from a service
    and deletes it is one change (which needs make-before-break), but routing away from a
    subset and removing it takes two (the rule would be written before the route)."""
    return [
        ("route to alpha v2", {"route": (("alpha", "v2", 100),)}),
        ("split alpha v1/v2 80/20", {"route": (("alpha", "v1", 80), ("alpha", "v2", 20))}),
        ("weights to 20/80", {"route": (("alpha", "v1", 20), ("alpha", "v2", 80))}),
        ("add subset alpha v3 and route to it",
         {"alpha_subsets": ("v1", "v2", "v3"), "route": (("alpha", "v3", 100),)}),
        ("split alpha v2 / beta v1", {"route": (("alpha", "v2", 50), ("beta", "v1", 50))}),
        ("remove subset alpha v3", {"alpha_subsets": ("v1", "v2")}),
        ("add service gamma and route to it", {"extra_services": ("gamma",), "route": (("gamma", "", 100),)}),
        ("route to beta v2 and remove gamma", {"extra_services": (), "route": (("beta", "v2", 100),)}),
        ("add an alpha endpoint and route to all of alpha",
         {"alpha_extra_endpoint": True, "route": (("alpha", "", 100),)}),
        ("change alpha's load balancer (clusters in use replaced)", {"alpha_lb": "LEAST_REQUEST"}),
        ("remove the alpha endpoint", {"alpha_extra_endpoint": False}),
        ("add service delta and split beta v1 / delta",
         {"extra_services": ("delta",), "route": (("beta", "v1", 50), ("delta", "", 50))}),
        ("route to alpha v1, remove delta, load balancer back",
         {"extra_services": (), "route": (("alpha", "v1", 100),), "alpha_lb": "ROUND_ROBIN"}),
    ]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    servers = Upstreams({v: EchoServer(f"alpha-{v}").start() for v in ("v1", "v2")},
                        {v: EchoServer(f"beta-{v}").start() for v in ("v1", "v2")},
                        {n: EchoServer(n).start() for n in ("gamma", "delta")}, EchoServer("alpha-v2-extra").start())
    yield servers
    for server in [*servers.alpha.values(), *servers.beta.values(), *servers.extra.values(), servers.alpha_extra]:
        server.stop()


def test_no_request_fails_while_config_changes(env: ConfigEnv, gateway: Proxy, upstreams: Upstreams) -> None:
    port = free_port()
    state = State()
    env.apply("zero-drop", upstreams.config(state, port))
    wait_until(lambda: ask(port, HOST).status_code == 200, what="the gateway to route")
    traffic = [Traffic(port, keep_alive=True).start(), Traffic(port, keep_alive=False).start()]
    applied: list[str] = []
    try:
        for what, change in itertools.islice(itertools.cycle(_steps()), CHANGES):
            state = replace(state, **change)  # type: ignore[arg-type]
            env.apply("zero-drop", upstreams.config(state, port))
            applied.append(what)
    finally:
        for t in traffic:
            t.stop()
    assert len(applied) == CHANGES
    assert env.nacks() == []
    for t in traffic:
        assert t.failures == [], f"keep_alive={t.keep_alive}: {len(t.failures)} failed: {t.failures[:10]}"
        # Traffic really ran throughout: at least one request per change on each client.
        assert t.statuses[200] >= CHANGES, t.statuses
    # Every replaced cluster got its endpoints again (else it would stay warming; Envoy #13009).
    dump = gateway.admin.config_dump()
    clusters = next(c for c in dump["configs"] if c["@type"].endswith("ClustersConfigDump"))
    assert clusters.get("dynamic_warming_clusters", []) == []
    seen = set().union(*(t.upstreams for t in traffic))
    assert {"alpha-v1", "alpha-v2", "beta-v1", "beta-v2", "gamma", "delta", "alpha-v2-extra"} <= seen
