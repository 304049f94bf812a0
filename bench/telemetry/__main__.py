"""`python -m bench telemetry`: what Istio's metrics from access logs cost.

1. Telemetry CPU per 1,000 requests/s: wrk drives traffic through one real sidecar whose
   access log entries stream to telemetry; telemetry's CPU seconds over the run divided by
   the entries it counted.  A request between two sidecars makes two entries (one per
   reporter), so mesh traffic costs twice the per-entry figure.  Goal (telemetry issue):
   at most 0.05 vCPU per 1,000 requests/s (Istio 1.1's istio-telemetry took 0.6).
   Measured where the goal is stated, at 1,000 mesh requests/s (2,000 entries/s through the
   sidecar), and also at ~420 requests/s through the sidecar (~210 mesh requests/s), where
   telemetry's fixed costs (its idle wake-ups, and Python gRPC's cost per message whatever
   its size) weigh five times as much per request.
2. The latency the access log service adds to a request: the same traffic with it on and
   off, p50 and p99 (goal: no measurable p99 change; Envoy sends entries asynchronously).
3. Telemetry's RSS with 100 workloads: 100 registered workloads, each reporting calls to 5
   others with 3 response codes on both reporters, streamed by 100 simulated proxies.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from bench.procs import cpu_seconds, rss_mb
from bench.sidecar_hop import sidecar_hop, wrk
from libs.bus import MESH_WORKLOADS, Bus, BusSettings
from libs.config.workloads import WorkloadRegistration
from tests.harness.mesh import Mesh, TelemetryService
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

RESULTS = Path(__file__).resolve().parents[1] / "results" / "telemetry.json"
DURATION_S = 20
RUNS = 3
# A steady load below saturation: at saturation the two cores are shared by wrk, both
# Envoys and telemetry, and any extra work shows as latency whatever its cause.
RATE_PER_S = 500
# The entries 1,000 mesh requests/s make: two reporters each.
MESH_ENTRIES_PER_S = 2000
CALIBRATION_S = 5
GOAL_VCPU_PER_1000_RPS = 0.05
WORKLOADS = 100


def mesh_config(telemetry: TelemetryService) -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    enableEnvoyAccessLogService: true
    defaultConfig: {{envoyAccessLogService: {{address: "{telemetry.als_address}"}}}}
"""


def counted(telemetry: TelemetryService) -> float:
    """Entries telemetry has turned into Istio's metrics, from its own small registry: each
    read here costs telemetry CPU that counts against the run, and the Istio metrics' whole
    exposition (every series and histogram bucket) would cost more than the count is worth."""
    return telemetry.metric("telemetry_access_log_entries_total", kind="http", outcome="counted")


def calibrated_rate(url: str, wanted_per_s: int, connections: int) -> tuple[int, float]:
    """The rate to ask wrk for so that it reaches about `wanted_per_s`: wrk spaces each
    connection's requests by a delay, so the latency of each request comes on top, and how
    much depends on the machine.  Run with the access log service on, as it will be measured.
    Returns the rate and the requests the calibration sent."""
    asked, sent = wanted_per_s, 0.0
    for _ in range(3):
        result = wrk(url, CALIBRATION_S, rate_per_s=asked, connections=connections)
        sent += result["requests"]
        asked = round(asked * wanted_per_s / result["requests_per_s"])
        if abs(result["requests_per_s"] - wanted_per_s) <= wanted_per_s * 0.03:
            break
    return asked, sent


def cpu_and_latency() -> dict[str, object]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (Debian package wrk)"}
    runs: dict[str, list[dict[str, float]]] = {"als_off": [], "als_on": [], "mesh_1000_rps": [],
                                               "saturated_als_off": [], "saturated_als_on": []}
    costs: list[float] = []
    mesh_costs: list[float] = []
    saturated_costs: list[float] = []
    with sidecar_hop() as hop:
        telemetry = hop.mesh.telemetry("--access-log", "")
        # Enough connections that wrk's whole-millisecond delays can space 2,000 requests/s.
        mesh_connections, mesh_rate = 12, 0
        for _ in range(RUNS):
            runs["als_off"].append(wrk(hop.url, DURATION_S, rate_per_s=RATE_PER_S))
            runs["saturated_als_off"].append(wrk(hop.url, DURATION_S))
            hop.config.apply("mesh", mesh_config(telemetry))
            if not mesh_rate:
                start = counted(telemetry)
                mesh_rate, sent = calibrated_rate(hop.url, MESH_ENTRIES_PER_S, mesh_connections)
                wait_until(lambda target=start + sent: counted(telemetry) >= target,  # type: ignore[misc]
                           timeout=60, interval=0.25, what="telemetry to count the calibration's requests")
            for rate, connections, name, cost in ((RATE_PER_S, 2, "als_on", costs),
                                                  (mesh_rate, mesh_connections, "mesh_1000_rps", mesh_costs),
                                                  (0, 2, "saturated_als_on", saturated_costs)):
                before_count, before_cpu = counted(telemetry), cpu_seconds(telemetry.process.pid)
                result = wrk(hop.url, DURATION_S, rate_per_s=rate, connections=connections)
                target = before_count + result["requests"]
                # Envoy sends what it holds within a second (its flush interval).
                wait_until(lambda target=target: counted(telemetry) >= target, timeout=60,  # type: ignore[misc]
                           interval=0.25, what="telemetry to count every request")
                cost.append((cpu_seconds(telemetry.process.pid) - before_cpu) * 1000 / (counted(telemetry)
                                                                                        - before_count))
                runs[name].append(result)
                if name == "mesh_1000_rps":
                    mesh_rate = round(mesh_rate * MESH_ENTRIES_PER_S / result["requests_per_s"])
            hop.config.remove("mesh")
    summary: dict[str, object] = {
        name: {key: round(statistics.median(r[key] for r in results), 3) for key in ("p50_ms", "p99_ms",
                                                                                     "requests_per_s")}
        for name, results in runs.items()}
    per_entry = statistics.median(costs)
    mesh_per_entry = statistics.median(mesh_costs)
    summary.update(
        rate_per_s=RATE_PER_S,
        # Measured at RATE_PER_S and scaled: telemetry's fixed costs counted about five times over.
        vcpu_per_1000_entries_per_s=round(per_entry, 4),
        vcpu_per_1000_mesh_requests_per_s=round(2 * per_entry, 4),
        # The goal's own figure: what telemetry takes while the mesh serves 1,000 requests/s.
        mesh_1000_rps_entries_per_s=summary["mesh_1000_rps"]["requests_per_s"],  # type: ignore[index]
        vcpu_at_1000_mesh_requests_per_s=round(2 * mesh_per_entry, 4),
        runs_vcpu_per_1000_mesh_requests_per_s={"at_about_500_rps": [round(2 * c, 4) for c in costs],
                                                "at_1000_mesh_rps": [round(2 * c, 4) for c in mesh_costs]},
        saturated_vcpu_per_1000_entries_per_s=round(statistics.median(saturated_costs), 4),
        goal_vcpu_per_1000_rps=GOAL_VCPU_PER_1000_RPS, met=2 * mesh_per_entry <= GOAL_VCPU_PER_1000_RPS,
        added_p99_ms=round(summary["als_on"]["p99_ms"] - summary["als_off"]["p99_ms"], 3),  # type: ignore[index]
        # Not a goal: at saturation the two cores are shared, so telemetry's own CPU shows here.
        saturated_added_p99_ms=round(summary["saturated_als_on"]["p99_ms"]  # type: ignore[index]
                                     - summary["saturated_als_off"]["p99_ms"], 3),  # type: ignore[index]
        runs=runs)
    return summary


def _node(index: int) -> base_pb2.Node:
    metadata = struct_pb2.Struct()
    metadata.update({"NAMESPACE": "bench", "LABELS": {"app": f"app{index}", "version": "v1"},
                     "WORKLOAD_NAME": f"app{index}-v1", "SERVICE_ACCOUNT": f"sa{index}", "MIZZEN_IDENTITY": "true"})
    return base_pb2.Node(id=f"sidecar~10.9.0.{index}~app{index}-v1.bench~bench.svc.cluster.local", metadata=metadata)


def _entries(index: int) -> list[accesslog_pb2.HTTPAccessLogEntry]:
    entries = []
    for peer in range(1, 6):
        other = (index + peer) % WORKLOADS
        for code in (200, 404, 503):
            for inbound in (True, False):
                entry = accesslog_pb2.HTTPAccessLogEntry()
                common = entry.common_properties
                if inbound:
                    common.upstream_cluster = "inbound|9080||"
                    common.downstream_direct_remote_address.socket_address.address = f"10.9.0.{other}"
                else:
                    common.upstream_cluster = f"outbound|9080||app{other}.bench.svc.cluster.local"
                    common.upstream_remote_address.socket_address.address = f"10.9.0.{other}"
                common.time_to_last_downstream_tx_byte.nanos = 3_000_000
                entry.response.response_code.value = code
                entries.append(entry)
    return entries


async def _report(telemetry: TelemetryService, nats_url: str) -> None:
    bus = await Bus.connect(BusSettings(url=nats_url), name="bench")
    try:
        bucket = await bus.kv(MESH_WORKLOADS)
        for index in range(WORKLOADS):
            registration = WorkloadRegistration(f"app{index}-v1", "bench", f"10.9.0.{index}",
                                                {"app": f"app{index}", "version": "v1"}, f"sa{index}")
            await bucket.put(registration.key, registration.to_json())
    finally:
        await bus.close()
    async with grpc.aio.insecure_channel(telemetry.als_address) as channel:
        stub = als_pb2_grpc.AccessLogServiceStub(channel)
        for index in range(WORKLOADS):
            message = als_pb2.StreamAccessLogsMessage()
            message.identifier.node.CopyFrom(_node(index))
            message.identifier.log_name = "bench"
            message.http_logs.log_entry.extend(_entries(index))
            await stub.StreamAccessLogs(iter([message]))


def memory() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        group = ProcessGroup(base)
        try:
            nats = start_nats(group, base / "nats")
            (base / "mesh").mkdir()
            telemetry = Mesh(group, nats, base / "mesh").telemetry("--access-log", "")
            idle = rss_mb(telemetry.process.pid)
            asyncio.run(_report(telemetry, nats.url))
            expected = WORKLOADS * 5 * 3 * 2
            series = wait_until(lambda: (n := sum(1 for family in text_string_to_metric_families(telemetry.metrics())
                                                  for sample in family.samples
                                                  if sample.name == "istio_requests_total")) >= expected and n,
                                timeout=60, what="every series")
            return {"workloads": WORKLOADS, "series": series, "rss_idle_mb": round(idle, 1),
                    "rss_mb": round(rss_mb(telemetry.process.pid), 1)}
        finally:
            group.stop_all()


def main() -> int:
    results = {"memory": memory(), "cpu_and_latency": cpu_and_latency()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
