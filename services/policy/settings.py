"""Policy's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class PolicySettings:
    """Policy answers Envoy's checks (ext_authz) and quotas (rate limit) from Mixer's rules."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS server URL (mesh-config and mesh-workloads)")
    nats_grace_s: float = knob(10.0, "seconds NATS may be away before /readyz turns false (a blip stays unseen)")
    registries: tuple[str, ...] = knob(("nats",), "where workloads are looked up by address, comma separated: nats "
                                                  "(the local mesh's mesh-workloads), kubernetes (Pods and Services)")
    kube_config: Path | None = knob(None, "kubeconfig for the kubernetes registry (unset: the pod's service account)")
    grpc_address: str = knob("0.0.0.0", "address of the check and rate-limit gRPC APIs")
    grpc_port: int = knob(9091, "port of the check and rate-limit gRPC APIs (Istio 1.0 Mixer: 9091)")
    http_check_port: int = knob(9094, "port of checks over HTTP/1.1 on the gRPC address (the registry port named "
                                      "http-check; pilot prefers it to gRPC); -1: none")
    monitoring_address: str = knob("0.0.0.0", "address of /healthz, /readyz and /metrics")
    monitoring_port: int = knob(15014, "port of /healthz, /readyz and /metrics")
    config_namespace: str = knob("istio-system", "namespace whose rules apply to every request (Mixer's)")
    ratelimit_redis_url: str = knob("", "host:port of the Redis counting envoyproxy/ratelimit-style limits (the "
                                        "ratelimit-config ConfigMap), shared by every replica; empty: each replica "
                                        "counts in memory")
    cluster_domain: str = knob("cluster.local", "DNS suffix of mesh service names, for resolving short names")
    check_cache_entries: int = knob(10000, "check decisions kept for reuse, at most")
    grpc_reuse_port: bool = knob(True, "let several replicas share the port on one host (SO_REUSEPORT)")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
