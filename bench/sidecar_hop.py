"""One real sidecar hop for latency benchmarks: nats, galley, pilot, a sidecar (agent and
Envoy, in the local mesh's proxy mode) in front of an upstream Envoy that answers directly,
and wrk (Debian's) driving HTTP/1.1 keep-alive traffic through it."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from libs.envoy.binaries import envoy_binary
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Mesh
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

SIDECAR_IP = "127.0.61.2"
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
UPSTREAM = """\
static_resources:
  listeners:
  - address: {{socket_address: {{address: {ip}, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/{hcm}
          stat_prefix: upstream
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: /}}, direct_response: {{status: 200, body: {{inline_string: ok}}}}}}]
admin: {{address: {{socket_address: {{address: {ip}, port_value: {admin}}}}}}}
"""
SERVICE = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: bench, namespace: default}}
spec:
  hosts: [bench.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints: [{{address: {SIDECAR_IP}, labels: {{app: bench}}}}]
"""


@dataclass
class Hop:
    config: ConfigEnv
    mesh: Mesh
    url: str


def wrk(url: str, duration_s: int, *, rate_per_s: int = 0, lua: str = "", connections: int = 2) -> dict[str, float]:
    """p50 / p99 in ms and requests/s: one thread, `connections` keep-alive connections, as
    fast as answers come, or about `rate_per_s` (Debian's wrk has no -R: a Lua `delay()`
    spaces each connection's requests, in whole milliseconds, so the rate reached is a little
    under the one asked; wrk's latency excludes the delay).  `lua`: more of wrk's script (a
    `request()` making each request different, say)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if rate_per_s or lua:
            if rate_per_s:
                script.write(f"function delay() return {connections * 1000 / rate_per_s:.3f} end\n")
            script.write(lua)
            script.flush()
            argv += ["-s", script.name]
        result = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=duration_s + 30)
    found: dict[str, float] = {}
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", result.stdout, re.MULTILINE)
        assert match, result.stdout
        value, unit = float(match.group(1)), match.group(2)
        found[f"p{percentile}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    requests = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    total = re.search(r"(\d+) requests in", result.stdout)
    found["requests_per_s"] = float(requests.group(1)) if requests else 0.0
    found["requests"] = float(total.group(1)) if total else 0.0
    return found


@contextmanager
def sidecar_hop(*, with_telemetry: bool = False) -> Iterator[Hop]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for folder in ("logs", "mesh", "config"):
            (base / folder).mkdir()
        group = ProcessGroup(base / "logs")
        try:
            nats = start_nats(group, base / "nats")
            mesh = Mesh(group, nats, base / "mesh")
            config = ConfigEnv(mesh, base / "config", mesh.galley(base / "config"), mesh.pilot())
            app_port, admin_port = free_port(), free_port()
            # The sidecar reaches its app on its own address (the local mesh's proxy mode).
            (base / "upstream.yaml").write_text(UPSTREAM.format(ip=SIDECAR_IP, port=app_port, admin=admin_port,
                                                                hcm=HCM))
            group.start("upstream", [str(envoy_binary()), "-c", str(base / "upstream.yaml"), "--base-id",
                                     str(free_port()), "--concurrency", "1", "-l", "warning"])
            config.apply("service", SERVICE)
            config.add_proxy(mesh.proxy(config.pilot, name="bench", bind_address=SIDECAR_IP, interception="NONE",
                                        labels={"app": "bench"}, app_ports={9080: app_port}))
            url = f"http://{SIDECAR_IP}:9080/reviews/1"
            wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, timeout=30, what="the sidecar to serve")
            yield Hop(config, mesh, url)
        finally:
            group.stop_all()
