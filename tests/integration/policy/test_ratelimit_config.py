"""envoyproxy/ratelimit's configuration format, served by the policy service to a real
Envoy whose rate-limit filter is set up as Istio's "Enabling Rate Limits using Envoy" task
sets up the ingress gateway (`:path` sent as `PATH`, domain `ratelimit`), with the task's
ConfigMap unchanged (applied through galley) and counts in a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.envoy.binaries import envoy_binary
from samples.echo import EchoServer
from tests.harness.envoy import EnvoyAdmin
from tests.harness.http import HTTP
from tests.harness.kv import config_revision
from tests.harness.mesh import GalleyService, Mesh, PolicyService
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.redis import RedisServer, start_redis
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

EDGE_IP, APP_IP, POLICY_IP = "127.0.44.1", "127.0.44.2", "127.0.44.3"

# Istio's task, as written there (its api value is for a later step).
ISTIO_TASK_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ratelimit-config
data:
  config.yaml: |
    domain: ratelimit
    descriptors:
      - key: PATH
        value: "/productpage"
        rate_limit:
          unit: minute
          requests_per_unit: 1
      - key: PATH
        value: "api"
        rate_limit:
          unit: minute
          requests_per_unit: 2
      - key: PATH
        rate_limit:
          unit: minute
          requests_per_unit: 100
"""

# A second configuration of the same ConfigMap: a key per user, nested, unlimited and shadow.
PER_USER = """\
  users.yaml: |
    domain: users
    descriptors:
      - key: user
        rate_limit: {unit: minute, requests_per_unit: 2}
        descriptors:
          - key: PATH
            value: /admin
            rate_limit: {unit: minute, requests_per_unit: 1}
      - key: user
        value: robot
        unlimited: true
      - key: user
        value: "shadow-*"
        shadow_mode: true
        rate_limit: {unit: minute, requests_per_unit: 1}
"""


def _typed(kind: str, **fields: object) -> dict[str, object]:
    return {"@type": f"type.googleapis.com/{kind}", **fields}


def edge_bootstrap(admin_port: int, edge_port: int, app: EchoServer, policy: PolicyService) -> dict[str, object]:
    """An Envoy with the rate-limit filter of Istio's task, plus a listener for a second
    domain sending two descriptors: the user header alone, and the user header with the path."""
    def manager(domain: str, limits: list[list[dict[str, object]]]) -> dict[str, object]:
        return {"name": "envoy.filters.network.http_connection_manager", "typed_config": _typed(
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix=domain,
            route_config={"virtual_hosts": [{
                "name": "all", "domains": ["*"], "rate_limits": [{"actions": actions} for actions in limits],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
            http_filters=[
                {"name": "envoy.filters.http.ratelimit", "typed_config": _typed(
                    "envoy.extensions.filters.http.ratelimit.v3.RateLimit", domain=domain, failure_mode_deny=True,
                    timeout="2s", rate_limit_service={"grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}},
                                                      "transport_api_version": "V3"})},
                {"name": "envoy.filters.http.router",
                 "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router")}])}

    path = {"request_headers": {"header_name": ":path", "descriptor_key": "PATH"}}
    user = {"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}
    listeners = [
        {"name": name, "address": {"socket_address": {"address": EDGE_IP, "port_value": port}},
         "filter_chains": [{"filters": [manager(domain, limits)]}]}
        for name, port, domain, limits in (("task", edge_port, "ratelimit", [[path]]),
                                            ("users", edge_port + 1, "users", [[user], [user, path]]))]

    def cluster(name: str, host: str, port: int, http2: bool) -> dict[str, object]:
        found: dict[str, object] = {
            "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}}}}]}]}}
        if http2:
            options = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
            found["typed_extension_protocol_options"] = {options: _typed(
                options, explicit_http_config={"http2_protocol_options": {}})}
        return found

    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
            "static_resources": {"listeners": listeners,
                                 "clusters": [cluster("app", app.host, app.port, False),
                                              cluster("ratelimit", policy.grpc_host, policy.grpc_port, True)]}}


@dataclass
class Edge:
    mesh: Mesh
    galley: GalleyService
    policy: PolicyService
    redis: RedisServer
    config_dir: Path
    port: int

    def get(self, path: str, *, port_offset: int = 0, **headers: str) -> int:
        return HTTP.get(f"http://{EDGE_IP}:{self.port + port_offset}{path}", headers=headers, timeout=10).status_code

    def apply(self, text: str) -> None:
        """Write the ConfigMap into galley's directory; wait until the policy service runs it."""
        before = config_revision(self.mesh.nats.url)
        staging = self.config_dir / ".ratelimit-config.yaml.tmp"
        staging.write_text(text)
        staging.replace(self.config_dir / "ratelimit-config.yaml")
        wait_until(lambda: config_revision(self.mesh.nats.url) > before, timeout=15, what="galley to publish it")
        revision = config_revision(self.mesh.nats.url)
        wait_until(lambda: self.policy.metric("policy_config_revision") >= revision, timeout=15,
                   what=f"the policy service to run revision {revision}")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    base = tmp_path_factory.mktemp("ratelimit")
    (base / "logs").mkdir()
    config_dir = base / "config"
    config_dir.mkdir()
    group = ProcessGroup(base / "logs")
    app = EchoServer("productpage", APP_IP, 0).start()
    try:
        redis = start_redis(group, base / "redis")
        nats = start_nats(group, base / "nats")
        mesh = Mesh(group, nats, base / "mesh")
        galley = mesh.galley(config_dir)
        policy = mesh.policy("--ratelimit-redis-url", redis.address, host=POLICY_IP)
        admin_port, edge_port = free_port(), free_port(EDGE_IP)
        bootstrap = base / "edge.json"
        bootstrap.write_text(json.dumps(edge_bootstrap(admin_port, edge_port, app, policy)))
        group.start("edge-envoy", [str(envoy_binary()), "-c", str(bootstrap), "--use-dynamic-base-id",
                                   "--concurrency", "1", "--log-level", "info"])
        wait_until(EnvoyAdmin("127.0.0.1", admin_port).ready, timeout=30, what="the edge Envoy LIVE")
        edge = Edge(mesh, galley, policy, redis, config_dir, edge_port)
        edge.apply(ISTIO_TASK_CONFIGMAP + PER_USER)
        yield edge
    finally:
        app.stop()
        group.stop_all()


# The longest a test here takes, policy restart included: it starts this far before the
# end of a calendar minute at the latest.
TEST_SPAN_S = 20


@pytest.fixture
def fresh(edge: Edge) -> Edge:
    """No counts, and the rest of a calendar minute to count in: envoyproxy/ratelimit's
    "minute" is the clock's, so a test that crossed into the next one would see its counts
    reset halfway."""
    wait_until(lambda: 60 - time.time() % 60 > TEST_SPAN_S, timeout=TEST_SPAN_S + 5,
               what="a calendar minute with time left to count in")
    edge.redis.flush()
    return edge


def in_one_minute(edge: Edge, burst: Callable[[], list[int]]) -> list[int]:
    """What `burst` answered, run inside one calendar minute: the limiter counts per calendar
    minute, as Envoy's ratelimit service does, so a burst the minute turned in would start a
    fresh count halfway.  Then the counts are flushed and the burst runs again."""
    for _ in range(3):
        minute = time.time() // 60
        codes = burst()
        if time.time() // 60 == minute:
            return codes
        edge.redis.flush()
    raise AssertionError("three bursts in a row met the turn of a minute")


def test_istios_task_config_limits_productpage_to_one_a_minute(fresh: Edge) -> None:
    assert in_one_minute(fresh, lambda: [fresh.get("/productpage") for _ in range(3)]) == [200, 429, 429]
    # Any other path: its own counter, under the default of 100 a minute.
    assert [fresh.get("/reviews") for _ in range(3)] == [200, 200, 200]
    assert fresh.policy.metric("policy_quota_decisions_total", domain="ratelimit", outcome="over_limit") >= 2


def test_nested_descriptors_count_per_value_with_unlimited_and_shadow_entries(fresh: Edge) -> None:
    users = {"port_offset": 1}
    assert in_one_minute(fresh, lambda: [fresh.get("/", **users, **{"x-user": "ann"}) for _ in range(3)]) \
        == [200, 200, 429]
    # Another user has a counter of their own; /admin's nested limit is 1.
    assert in_one_minute(fresh, lambda: [fresh.get("/admin", **users, **{"x-user": "bob"}) for _ in range(2)]) \
        == [200, 429]
    assert [fresh.get("/", **users, **{"x-user": "robot"}) for _ in range(4)] == [200] * 4
    # Shadow mode counts (and says so) but lets the request through.
    before = fresh.policy.metric("policy_quota_decisions_total", domain="users", outcome="shadow_over_limit")
    assert [fresh.get("/", **users, **{"x-user": "shadow-1"}) for _ in range(3)] == [200] * 3
    assert fresh.policy.metric("policy_quota_decisions_total", domain="users", outcome="shadow_over_limit") \
        == before + 2


def test_an_edit_applies_and_a_broken_one_is_refused_with_the_last_valid_limits_kept(fresh: Edge) -> None:
    try:
        fresh.apply(ISTIO_TASK_CONFIGMAP.replace("requests_per_unit: 1\n", "requests_per_unit: 3\n") + PER_USER)
        assert in_one_minute(fresh, lambda: [fresh.get("/productpage") for _ in range(4)]) == [200, 200, 200, 429]
        (fresh.config_dir / "ratelimit-config.yaml").write_text(
            ISTIO_TASK_CONFIGMAP.replace("unit: minute", "unit: fortnight") + PER_USER)
        wait_until(lambda: "data.config.yaml.descriptors[0].rate_limit.unit" in fresh.galley.process.log(),
                   timeout=15, what="galley to refuse the broken ConfigMap")
        assert "'fortnight' is not one of second, minute" in fresh.galley.process.log()
        fresh.redis.flush()
        assert in_one_minute(fresh, lambda: [fresh.get("/productpage") for _ in range(4)]) == [200, 200, 200, 429]
    finally:
        fresh.apply(ISTIO_TASK_CONFIGMAP + PER_USER)


def test_counts_live_in_redis_and_survive_a_policy_restart(fresh: Edge) -> None:
    assert fresh.get("/productpage") == 200
    fresh.policy.process.stop()
    fresh.policy = fresh.mesh.policy("--ratelimit-redis-url", fresh.redis.address, host=POLICY_IP,
                                     grpc_port=fresh.policy.grpc_port)
    # Envoy may meet its broken connection to the old process once (500, failing closed).
    status = wait_until(lambda: (code := fresh.get("/productpage")) != 500 and code, timeout=15,
                        what="the restarted policy service to answer")
    assert status == 429
