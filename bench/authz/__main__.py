"""`python -m bench authz`: what AuthorizationPolicy enforcement costs.

1. Latency the filters add on one sidecar hop: wrk (Debian's) drives HTTP/1.1 keep-alive
   traffic at a fixed rate through a real sidecar (agent + Envoy, configured by pilot) to
   an upstream Envoy answering directly, once with no policy and once with 10 ALLOW/DENY
   policies of 10 rules each selecting the workload; p50 and p99 of each, and the
   difference.  Goal (authorization issue): under 0.2 ms added at p99.
2. Pilot's translation cost per proxy with 1,000 policies in the mesh (pure, in process):
   the security filters of one proxy class, and its whole config, with and without them.
3. Istio's allow-nothing on the Bookinfo local mesh, applied and deleted five times with
   `mizzenctl`: from the command's return (galley stored the change) to the first product
   page refused with `RBAC: access denied`, and from the delete's return to the first page
   served again, each polled back to back through the ingress gateway.  Goal (authorization
   issue): the page is back within a second.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.faults.__main__ import until
from bench.mesh.__main__ import mizzenctl
from bench.sidecar_hop import sidecar_hop, wrk
from libs.config import parse_text
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.networking import generator, security
from services.pilot.networking.memo import TranslationMemo

RESULTS = Path(__file__).resolve().parents[1] / "results" / "authz.json"
DURATION_S = 20
RUNS = 3
GOAL_P99_MS = 0.2
GOAL_RESTORE_S = 1.0
ALLOW_NOTHING = Path(__file__).resolve().parents[2] / "samples" / "bookinfo" / "security" / "allow-nothing.yaml"
SUBNET = 84
CYCLES = 5
DENIED = "RBAC: access denied"


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


def latency() -> dict[str, object]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (Debian package wrk)"}
    runs: dict[str, list[dict[str, float]]] = {"no_policy": [], "policies_10x10": []}
    with sidecar_hop() as hop:
        for _ in range(RUNS):
            runs["no_policy"].append(wrk(hop.url, DURATION_S))
            hop.config.apply("policies", policies())
            runs["policies_10x10"].append(wrk(hop.url, DURATION_S))
            hop.config.remove("policies")
    summary: dict[str, object] = {}
    for name, results in runs.items():
        summary[name] = {key: round(statistics.median(r[key] for r in results), 3) for key in ("p50_ms", "p99_ms",
                                                                                                "requests_per_s")}
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


def _page(url: str) -> tuple[int, str]:
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        return 0, str(exc)
    return answer.status_code, answer.text


def _ran(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"mizzenctl {' '.join(map(str, result.args[3:]))} failed: {result.stderr}")


def allow_nothing() -> dict[str, object]:
    """Part 3: allow-nothing applied and deleted on Bookinfo, `CYCLES` times."""
    url = f"http://127.{SUBNET}.1.1:8080/productpage"
    denied_s: list[float] = []
    restored_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mzb-authz-") as tmp:
        state = Path(tmp) / "state"
        _ran(mizzenctl(state, "up", "-d", "--subnet", str(SUBNET), "--ingress-address", f"127.{SUBNET}.1.1"))
        try:
            until("the product page", lambda: _page(url)[0] == 200)
            for _ in range(CYCLES):
                _ran(mizzenctl(state, "apply", "-f", str(ALLOW_NOTHING)))
                applied = time.monotonic()
                denied_s.append(until("allow-nothing to refuse the page", lambda: _page(url) == (403, DENIED))
                                - applied)
                _ran(mizzenctl(state, "delete", "-f", str(ALLOW_NOTHING)))
                deleted = time.monotonic()
                restored_s.append(until("the page to come back", lambda: _page(url)[0] == 200) - deleted)
        finally:
            mizzenctl(state, "down")
    return {"cycles": CYCLES, "denied_after_apply_s": [round(s, 3) for s in denied_s],
            "restored_after_delete_s": [round(s, 3) for s in restored_s],
            "worst_restore_s": round(max(restored_s), 3), "goal_restore_s": GOAL_RESTORE_S,
            "met": max(restored_s) < GOAL_RESTORE_S}


def main() -> int:
    results = {"translation": translation(), "allow_nothing": allow_nothing(), "latency": latency()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
