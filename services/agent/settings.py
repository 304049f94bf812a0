"""The agent's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class AgentSettings:
    """The agent writes its Envoy's bootstrap, then starts and supervises Envoy."""

    pilot_address: str = knob("127.0.0.1:15010", "host:port of pilot's xDS server")
    node_type: str = knob("sidecar", "sidecar, or router for ingress/egress gateways")
    pod_name: str = knob("", "workload instance name (Kubernetes pod name)")
    namespace: str = knob("default", "namespace of the workload")
    instance_ip: str = knob("127.0.0.1", "IP address of the workload")
    labels: tuple[str, ...] = knob((), "workload labels as k=v, comma separated")
    service_account: str = knob("default", "service account the workload runs as")
    domain_suffix: str = knob("cluster.local", "cluster DNS suffix")
    bind_address: str = knob("", "address the proxy's listeners bind (empty: 0.0.0.0)")
    interception_mode: str = knob("REDIRECT", "REDIRECT (iptables) or NONE (apps use the sidecar as a proxy)")
    admin_address: str = knob("127.0.0.1", "Envoy admin address (never exposed beyond loopback)")
    admin_port: int = knob(15000, "Envoy admin port")
    stats_port: int = knob(15090, "Envoy Prometheus port (/stats/prometheus); 0 disables it")
    health_port: int = knob(15021, "Envoy readiness port (/healthz/ready); 0 disables it")
    state_dir: Path = knob(Path(".mizzen/agent"), "directory for the bootstrap file")
    envoy_log_level: str = knob("warning", "Envoy's log level")
    envoy_concurrency: int = knob(2, "Envoy worker threads")
    xds_api: str = knob("GRPC", "GRPC (state of the world) or DELTA_GRPC")
    monitoring_address: str = knob("127.0.0.1", "address of the agent's /healthz, /readyz, /metrics")
    monitoring_port: int = knob(15020, "port of the agent's /healthz, /readyz, /metrics")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown (Envoy included)")

    @property
    def label_map(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.labels if "=" in item)
        return {key.strip(): value.strip() for key, value in pairs}

    @property
    def node_id(self) -> str:
        pod = self.pod_name or "proxy"
        return f"{self.node_type}~{self.instance_ip}~{pod}.{self.namespace}~{self.namespace}.svc.{self.domain_suffix}"
