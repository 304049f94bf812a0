"""`python -m bench authz`: what AuthorizationPolicy enforcement costs.

1. Latency the filters add on one sidecar hop: wrk (Debian's) drives HTTP/1.1 keep-alive
   traffic at a fixed rate through a real sidecar (agent + Envoy, configured by pilot) to
   an upstream Envoy answering directly, once with no policy and once with 10 ALLOW/DENY
   policies of 10 rules each selecting the workload; p50 and p99 of each, and the
   difference.  Goal (authorization issue): under 0.2 ms added at p99.
2. Pilot's translation cost per proxy with 1,000 policies in the mesh (pure, in process):
   the security filters of one proxy class, and its whole config, with and without them.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from libs.config import parse_text
from libs.envoy.binaries import envoy_binary
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.networking import generator, security
from services.pilot.networking.memo import TranslationMemo
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Mesh
from tests.harness.nats import start_nats
from tests.harness.ports import free_port
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

RESULTS = Path(__file__).resolve().parents[1] / "results" / "authz.json"
SIDECAR_IP = "127.0.61.2"
DURATION_S = 20
RUNS = 3
GOAL_P99_MS = 0.2

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


def policies(count: int = 10, rules: int = 10) -> str:
    """`count` policies selecting the workload, half DENY on paths nobody asks for, half
    ALLOW whose last rule admits the benchmark's GETs: each request walks every rule."""
    documents = []
    for p in range(count):
        action = "DENY" if p % 2 else "ALLOW"
        body = [f"{{to: [{{operation: {{paths: [/blocked/{p}/{r}/*], methods: [POST, PUT]}}}}], "
                f"when: [{{key: 'request.headers[x-tenant]', values: [t{r}]}}]}}" for r in range(rules - 1)]
        body.append("{to: [{operation: {methods: [GET], paths: ['/*']}}]}" if action == "ALLOW" else
                    f"{{from: [{{source: {{ipBlocks: [203.0.113.{p}/32]}}}}]}}")
        documents.append(f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: "
                         f"{{name: p{p}, namespace: default}}\nspec: {{selector: {{matchLabels: {{app: bench}}}}, "
                         f"action: {action}, rules: [{', '.join(body)}]}}\n")
    return "---\n".join(documents)


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
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def wrk(url: str) -> dict[str, float]:
    """p50 / p99 in ms at a constant rate (wrk2's -R is not in Debian's wrk: two connections,
    each sending as fast as answers come, is the closest; latency is what we compare)."""
    result = subprocess.run(["wrk", "-t1", "-c2", f"-d{DURATION_S}s", "--latency", url],
                            capture_output=True, text=True, check=True, timeout=DURATION_S + 30)
    found = {}
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", result.stdout, re.MULTILINE)
        assert match, result.stdout
        value, unit = float(match.group(1)), match.group(2)
        found[f"p{percentile}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    requests = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    found["requests_per_s"] = float(requests.group(1)) if requests else 0.0
    return found


def latency() -> dict[str, object]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (Debian package wrk)"}
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
            runs: dict[str, list[dict[str, float]]] = {"no_policy": [], "policies_10x10": []}
            for _ in range(RUNS):
                runs["no_policy"].append(wrk(url))
                config.apply("policies", policies())
                runs["policies_10x10"].append(wrk(url))
                config.remove("policies")
        finally:
            group.stop_all()
    summary: dict[str, object] = {}
    for name, results in runs.items():
        summary[name] = {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]}
    added_p99 = summary["policies_10x10"]["p99_ms"] - summary["no_policy"]["p99_ms"]  # type: ignore[index]
    added_p50 = summary["policies_10x10"]["p50_ms"] - summary["no_policy"]["p50_ms"]  # type: ignore[index]
    summary.update(added_p50_ms=round(added_p50, 3), added_p99_ms=round(added_p99, 3), goal_p99_ms=GOAL_P99_MS,
                   met=added_p99 < GOAL_P99_MS, runs=runs)
    return summary


def translation() -> dict[str, object]:
    """1,000 policies over 100 namespaces (10 each, 5 selecting app=reviews), 100 workloads."""
    documents = []
    for n in range(100):
        for p in range(10):
            selector = "selector: {matchLabels: {app: reviews}}, " if p < 5 else ""
            documents.append(
                f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p{p}, "
                f"namespace: ns{n}}}\nspec: {{{selector}action: {'DENY' if p % 2 else 'ALLOW'}, rules: ["
                f"{{from: [{{source: {{principals: [cluster.local/ns/ns{n}/sa/a{p}]}}}}], to: [{{operation: "
                f"{{methods: [GET], paths: ['/api/{p}/*']}}}}]}}, {{when: [{{key: 'request.headers[x-id]', "
                f"values: [v{p}]}}]}}]}}\n")
    result = parse_text("---\n".join(documents), "bench")
    assert result.ok, result.errors()[:3]
    snapshot = ConfigSnapshot(1, {r.key: r for _, r in result.resources})
    workloads = tuple(WorkloadInstance(name=f"reviews-{n}", namespace=f"ns{n}", address=f"10.1.{n}.1",
                                       labels=(("app", "reviews"),), sidecar=True) for n in range(100))
    push = PushContext.build(snapshot, MeshConfig(), workloads=workloads)
    proxies = [Proxy(id=f"sidecar~10.1.{n}.1~reviews-{n}.ns{n}~ns{n}.svc.cluster.local", type=NodeType.SIDECAR,
                     ip=f"10.1.{n}.1", pod=f"reviews-{n}", namespace=f"ns{n}", dns_domain=f"ns{n}.svc.cluster.local",
                     labels=(("app", "reviews"),)) for n in range(100)]
    started = time.perf_counter()
    for proxy in proxies:
        security.build(proxy, push)
    per_class_ms = (time.perf_counter() - started) / len(proxies) * 1000
    memo = TranslationMemo()
    started = time.perf_counter()
    for proxy in proxies:
        generator.generate(proxy, push, memo)
    with_policies_ms = (time.perf_counter() - started) / len(proxies) * 1000
    bare = PushContext.build(ConfigSnapshot(1, {}), MeshConfig(), workloads=workloads)
    memo = TranslationMemo()
    started = time.perf_counter()
    for proxy in proxies:
        generator.generate(proxy, bare, memo)
    without_ms = (time.perf_counter() - started) / len(proxies) * 1000
    return {"policies": 1000, "namespaces": 100, "security_filters_per_proxy_class_ms": round(per_class_ms, 3),
            "generate_per_proxy_ms": round(with_policies_ms, 3), "generate_per_proxy_without_policies_ms":
            round(without_ms, 3)}


def main() -> int:
    results = {"translation": translation(), "latency": latency()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
