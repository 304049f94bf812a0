"""Telemetry's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class TelemetrySettings:
    """Telemetry turns Envoy's access log streams into Istio's metrics, logs and traces."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS server URL (mesh-config and mesh-workloads for the join)")
    nats_grace_s: float = knob(10.0, "seconds NATS may be away before /readyz turns false (a blip stays unseen)")
    registries: tuple[str, ...] = knob(("nats",), "where workloads are looked up by address, comma separated: nats "
                                                  "(the local mesh's mesh-workloads), kubernetes (Pods and Services)")
    kube_config: Path | None = knob(None, "kubeconfig for the kubernetes registry (unset: the pod's service account)")
    domain_suffix: str = knob("cluster.local", "DNS suffix of Kubernetes service names")
    als_address: str = knob("0.0.0.0", "address of the gRPC access log service proxies stream to")
    als_port: int = knob(9092, "port of the gRPC access log service (Istio 1.0 telemetry: 9092)")
    prometheus_address: str = knob("0.0.0.0", "address of Istio's metrics (/metrics) and the service graph (/graph)")
    prometheus_port: int = knob(42422, "port of Istio's metrics and the graph (Istio 1.0 telemetry: 42422)")
    zipkin_address: str = knob("0.0.0.0", "address of the Zipkin API (spans in, traces out)")
    zipkin_port: int = knob(9411, "port of the Zipkin API (Zipkin's: 9411; 0 turns tracing off)")
    monitoring_address: str = knob("0.0.0.0", "address of telemetry's own /healthz, /readyz and /metrics")
    monitoring_port: int = knob(15014, "port of telemetry's own /healthz, /readyz and /metrics")
    system_namespace: str = knob("istio-system", "namespace of the `istio` ConfigMap holding the mesh config")
    metric_expiry_s: float = knob(600.0, "seconds a metric series no request touched is kept (0: forever)")
    graph_window_s: float = knob(30.0, "seconds of traffic the service graph's rates are taken over")
    access_log: str = knob("-", "where telemetry writes access log lines: a file, - for stdout, or empty for none")
    max_traces: int = knob(20000, "traces the Zipkin store keeps in memory; the oldest go first")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
