"""Galley's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class GalleySettings:
    """Galley validates Istio config from its sources and publishes it to mesh-config."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS server URL")
    nats_grace_s: float = knob(10.0, "seconds NATS may be away before /readyz turns false (a blip stays unseen)")
    config_dir: Path | None = knob(None, "directory of YAML to watch, recursively (unset: no file source)")
    poll_interval_s: float = knob(0.2, "seconds between scans of config_dir for changed files")
    default_namespace: str = knob("default", "namespace of resources that do not name one")
    max_file_bytes: int = knob(4 * 1024 * 1024, "largest config file accepted, in bytes")
    kubeconfig: Path | None = knob(None, "kubeconfig to watch Istio CRDs with (unset: no Kubernetes source)")
    kube_in_cluster: bool = knob(False, "watch Istio CRDs with the pod's service account (in-cluster config)")
    kube_context: str | None = knob(None, "kubeconfig context (default: the current one)")
    watch_namespaces: tuple[str, ...] = knob((), "namespaces to watch, comma separated (empty: all)")
    mesh_namespace: str = knob("istio-system", "namespace whose ConfigMap `istio` holds the mesh config (Kubernetes)")
    kube_watch_timeout_s: int = knob(300, "seconds a Kubernetes watch stays open before it is renewed")
    kube_request_timeout_s: float = knob(30.0, "seconds allowed for one Kubernetes API request")
    kube_rediscover_interval_s: float = knob(60.0, "seconds between checks for newly installed Istio CRDs")
    api_address: str = knob("127.0.0.1", "address of the HTTP API used by mizzenctl apply/delete/get")
    api_port: int = knob(15019, "port of the HTTP API (0 disables it)")
    api_token_file: Path | None = knob(None, "file holding the bearer token the API requires (unset: none)")
    webhook_address: str = knob("0.0.0.0", "address of the validating admission webhook (HTTPS)")
    webhook_port: int = knob(9443, "port of the validating admission webhook")
    webhook_cert_file: Path | None = knob(None, "TLS certificate of the webhook (unset: webhook off)")
    webhook_key_file: Path | None = knob(None, "TLS private key of the webhook")
    analysis_platform: str = knob("auto", "what apply-time analysis knows of services and workloads: `workloads` "
                                          "(ServiceEntries and the local mesh's mesh-workloads), `none` (checks "
                                          "that need them are skipped), `auto` (none when watching Kubernetes)")
    replica_id: str = knob("", "this replica's name in the leader lease (default: host and pid)")
    lease_ttl_s: float = knob(3.0, "seconds without renewal after which another replica takes the lease")
    lease_renew_s: float = knob(0.5, "seconds between lease renewals by the leader")
    monitoring_address: str = knob("0.0.0.0", "address of /healthz, /readyz and /metrics")
    monitoring_port: int = knob(15014, "port of /healthz, /readyz and /metrics")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
