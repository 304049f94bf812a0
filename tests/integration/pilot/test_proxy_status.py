"""`mizzenctl proxy-status` and `proxy-config` against a real control plane and a real
Envoy gateway, and the convergence metrics behind them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from envoy.admin.v3 import config_dump_pb2
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

import services.pilot.networking.generator  # noqa: F401  (registers every Envoy type pilot sends)
from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.http import HTTP
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import version_subsets
from tests.harness.upstreams import Workload, service_entry
from tests.harness.upstreams import gateway as gateway_yaml
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

GATEWAY = "ingressgateway.istio-system"
REVIEWS = "reviews.default.svc.cluster.local"

DESTINATION_RULE = version_subsets("reviews", "v1", "v2")

VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""

CANARY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: canary, namespace: default}
spec:
  hosts: [canary.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
"""

# Galley accepts any %VAR% that is well formed; Envoy knows no NOT_A_VARIABLE and NACKs the
# route configuration.  (If galley learns Envoy's variable names, this stops passing galley:
# pick another gap, or write the entry to mesh-config directly.)
REJECTED_BY_ENVOY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: default}
spec:
  hosts: [bad.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    headers: {request: {set: {x-bad: "%NOT_A_VARIABLE%"}}}
"""


@pytest.fixture(scope="module")
def reviews() -> Iterator[dict[str, EchoServer]]:
    servers = {v: EchoServer(f"reviews-{v}").start() for v in ("v1", "v2")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def routed(env: ConfigEnv, gateway: Proxy, reviews: dict[str, EchoServer]) -> int:
    """The module's config, applied once (the `config` fixture keeps it between tests)."""
    port = free_port()
    env.apply("gateway", gateway_yaml(port))
    env.apply("reviews-se", service_entry(
        REVIEWS, [Workload(server, {"app": "reviews", "version": v}) for v, server in reviews.items()]))
    env.apply("reviews-dr", DESTINATION_RULE)
    env.apply("reviews-vs", VIRTUAL_SERVICE)
    return port


@pytest.fixture
def served(routed: int, config: ConfigEnv) -> tuple[ConfigEnv, int]:
    """The module's config, and whatever a test adds removed after it."""
    return config, routed


def mizzenctl(env: ConfigEnv, *args: str) -> str:
    """The real CLI; pilot's URL from the environment, as a user would set it."""
    result = subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MIZZEN_PILOT_URL": env.pilot.monitoring}, check=False)
    assert result.returncode == 0, f"mizzenctl {' '.join(args)}: {result.stderr}"
    return result.stdout


def parse_table(text: str) -> list[dict[str, str]]:
    """Rows of an istioctl-style table, cut at the header's column starts."""
    header, *lines = [line for line in text.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s{2}))\S", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return [{name: line[a:b].strip() for name, a, b in zip(names, starts, [*starts[1:], None], strict=True)}
            for line in lines]


def metric(env: ConfigEnv, name: str, **labels: str) -> float:
    """A sample from pilot's /metrics (0 when absent)."""
    for family in text_string_to_metric_families(env.pilot.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_proxy_status_is_synced_after_convergence(served: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    env, _ = served
    (row,) = [r for r in parse_table(mizzenctl(env, "proxy-status")) if r["NAME"] == GATEWAY]
    assert [row[t] for t in ("CDS", "LDS", "EDS", "RDS")] == ["SYNCED"] * 4
    assert row["CLUSTER"] == "Kubernetes"
    assert row["ISTIOD"] == env.pilot.get("/debug/syncz").json()["pilot"]
    envoy_version = HTTP.get(f"{gateway.admin.base}/server_info", timeout=5).json()["version"]
    assert row["VERSION"] and f"/{row['VERSION']}/" in envoy_version
    # The VirtualService arrived after the gateway connected: its convergence was measured.
    assert re.fullmatch(r"\d+\.\d{3}s", row["LAST CONVERGENCE"])

    (as_json,) = [r for r in json.loads(mizzenctl(env, "proxy-status", "-o", "json")) if r["name"] == GATEWAY]
    assert as_json["proxy"] == gateway.node_id and as_json["last_convergence_s"] > 0

    # Pilot's view and what Envoy actually holds agree, type by type.
    compared = mizzenctl(env, "proxy-status", GATEWAY, "--admin", gateway.admin.base.removeprefix("http://"))
    assert [line.split(" (")[0] for line in compared.splitlines()] == [
        "Clusters Match", "Listeners Match", "Endpoints Match", "Routes Match"]


def test_a_nacked_config_is_stale_with_envoys_error(served: tuple[ConfigEnv, int], gateway: Proxy) -> None:
    env, _ = served
    rejects = metric(env, "pilot_total_xds_rejects_total", type="RDS")
    env.apply("bad-vs", REJECTED_BY_ENVOY)
    assert [n.split(": ", 1)[1] for n in env.nacks()] == ["Not supported field in StreamInfo: NOT_A_VARIABLE"]

    verbose = mizzenctl(env, "proxy-status", "-v")
    (row,) = [r for r in parse_table(verbose.split("\n\n")[0]) if r["NAME"] == GATEWAY]
    assert [row[t] for t in ("CDS", "LDS", "EDS", "RDS")] == ["SYNCED", "SYNCED", "SYNCED", "STALE (NACK)"]
    assert f"NACK: {GATEWAY} RDS rejected version" in verbose
    assert "Not supported field in StreamInfo: NOT_A_VARIABLE" in verbose
    assert metric(env, "pilot_total_xds_rejects_total", type="RDS") == rejects + 1

    compared = mizzenctl(env, "proxy-status", GATEWAY, "--admin", gateway.admin.base)
    assert "Routes Don't Match" in compared and '"value": "%NOT_A_VARIABLE%"' in compared
    assert "Clusters Match" in compared

    # Removing the bad config brings the proxy back in sync.
    env.remove("bad-vs")
    (row,) = [r for r in parse_table(mizzenctl(env, "proxy-status")) if r["NAME"] == GATEWAY]
    assert row["RDS"] == "SYNCED"


def test_proxy_config_tables_from_pilot_and_from_envoy(served: tuple[ConfigEnv, int], gateway: Proxy,
                                                       reviews: dict[str, EchoServer]) -> None:
    env, port = served
    admin = gateway.admin.base

    clusters = parse_table(mizzenctl(env, "proxy-config", "clusters", GATEWAY))
    mesh = [(r["SERVICE FQDN"], r["PORT"], r["SUBSET"], r["DIRECTION"], r["TYPE"], r["DESTINATION RULE"])
            for r in clusters if r["SERVICE FQDN"] == REVIEWS]
    assert mesh == [(REVIEWS, "80", s, "outbound", "EDS", "reviews.default") for s in ("-", "v1", "v2")]
    from_envoy = {r["SERVICE FQDN"] for r in parse_table(mizzenctl(env, "pc", "clusters", "--admin", admin))}
    assert {REVIEWS, "BlackHoleCluster", "xds-grpc"} <= from_envoy, "Envoy's view includes its bootstrap clusters"

    for source in ((GATEWAY,), ("--admin", admin)):
        (listener,) = parse_table(mizzenctl(env, "proxy-config", "listeners", *source))
        assert listener == {"ADDRESS": "127.0.0.1", "PORT": str(port), "MATCH": "ALL",
                            "DESTINATION": f"Route: http.{port}"}
        routes = parse_table(mizzenctl(env, "proxy-config", "routes", *source))
        assert [(r["NAME"], r["VHOST NAME"], r["DOMAINS"], r["MATCH"], r["VIRTUAL SERVICE"]) for r in routes] == [
            (f"http.{port}", f"*:{port}", "*", "/* [end-user=jason]", "reviews.default"),
            (f"http.{port}", f"*:{port}", "*", "/*", "reviews.default"),
        ]

    addresses = {v: f"{s.host}:{s.port}" for v, s in reviews.items()}
    v2 = f"outbound|80|v2|{REVIEWS}"
    endpoints = parse_table(mizzenctl(env, "pc", "endpoints", "--admin", admin, "--cluster", v2))
    assert endpoints == [{"ENDPOINT": addresses["v2"], "STATUS": "HEALTHY", "OUTLIER CHECK": "OK", "CLUSTER": v2}]
    from_pilot = parse_table(mizzenctl(env, "pc", "endpoints", GATEWAY, "--cluster", f"outbound|80||{REVIEWS}"))
    assert sorted(r["ENDPOINT"] for r in from_pilot) == sorted(addresses.values())

    # -o json: the raw resources.
    raw = json.loads(mizzenctl(env, "proxy-config", "routes", GATEWAY, "-o", "json"))
    assert [r["name"] for r in raw] == [f"http.{port}"]
    raw_clusters = json.loads(mizzenctl(env, "proxy-config", "clusters", "--admin", admin, "-o", "json"))
    assert f"outbound|80|v1|{REVIEWS}" in {c["name"] for c in raw_clusters}

    # Pilot's /debug/config_dump is a real Envoy admin ConfigDump.
    dump = env.pilot.get("/debug/config_dump", proxyID=GATEWAY, include_eds="true").json()
    parsed = json_format.ParseDict(dump, config_dump_pb2.ConfigDump())
    assert len(parsed.configs) == 4


def test_convergence_metrics_and_push_status_move(served: tuple[ConfigEnv, int]) -> None:
    env, port = served
    assert metric(env, "pilot_xds") >= 1
    converged = metric(env, "pilot_proxy_convergence_time_count")
    pushes = metric(env, "pilot_xds_pushes_total", type="RDS", trigger="config")

    env.apply("canary-vs", CANARY)
    wait_until(lambda: HTTP.get(f"http://127.0.0.1:{port}/", headers={"host": "canary.example.com"}, timeout=5)
               .headers.get("x-upstream") == "reviews-v2", timeout=10, what="the canary host to reach v2")

    assert metric(env, "pilot_proxy_convergence_time_count") >= converged + 1
    assert metric(env, "pilot_xds_pushes_total", type="RDS", trigger="config") >= pushes + 1
    status: dict[str, Any] = env.pilot.get("/debug/push_status").json()
    last = status["last"]
    assert last["trigger"] == "config" and last["changes"] >= 1
    assert last["version"] == env.pilot.get("/debug/syncz").json()["version"]
    assert last["proxies_synced"] == last["proxies_connected"] >= 1
    assert last["convergence_max_s"] is not None and last["convergence_max_s"] > 0
