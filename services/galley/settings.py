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
    webhook_cert_source: str = knob("files", "where the webhook's TLS certificate comes from: `files` "
                                             "(webhook_cert_file and webhook_key_file; unset: webhook off) or "
                                             "`citadel` (signed for galley's identity and serving_dns_names, "
                                             "renewed in place; needs citadel_root_cert and citadel_token_file)")
    webhook_cert_file: Path | None = knob(None, "TLS certificate of the webhook, PEM (`files`; unset: webhook off)")
    webhook_key_file: Path | None = knob(None, "TLS private key of the webhook, PEM (`files`)")
    citadel_address: str = knob("istio-citadel.istio-system.svc:8060", "host:port of citadel's CSR API, for the "
                                                                        "webhook's certificate (`citadel`)")
    citadel_root_cert: Path | None = knob(None, "PEM root certificate citadel's TLS certificate chains to")
    citadel_server_name: str = knob("", "TLS server name expected from citadel (empty: the host of citadel_address)")
    citadel_token_file: Path | None = knob(None, "bearer token presented to citadel (a projected service-account "
                                                 "token with audience istio-ca, or a bootstrap token), re-read for "
                                                 "every CSR")
    trust_domain: str = knob("cluster.local", "SPIFFE trust domain of galley's identity")
    namespace: str = knob("istio-system", "namespace galley runs in (its SPIFFE identity)")
    service_account: str = knob("istio-galley-service-account", "service account galley runs as (its SPIFFE "
                                                                "identity)")
    serving_dns_names: tuple[str, ...] = knob(
        ("istio-galley.istio-system.svc",),
        "DNS names in the webhook's certificate, comma separated: the Service the API server calls "
        "(citadel must grant them to galley's identity, its --dns-grants)")
    serving_cert_ttl_s: int = knob(86400, "seconds of validity asked for the webhook's certificate")
    cert_rotation_fraction: float = knob(0.5, "renew the webhook's certificate after this fraction of its life (0-1)")
    citadel_retry_initial_s: float = knob(0.2, "seconds before the first retry of a failed CSR; doubles each time")
    citadel_retry_max_s: float = knob(30.0, "seconds between CSR retries, at most")
    citadel_timeout_s: float = knob(10.0, "seconds a CSR call may take before it is retried")
    analysis_platform: str = knob("auto", "what apply-time analysis knows of services and workloads: `workloads` "
                                          "(ServiceEntries and the local mesh's mesh-workloads), `none` (checks "
                                          "that need them are skipped), `auto` (none when watching Kubernetes)")
    replica_id: str = knob("", "this replica's name in the leader lease; restarted under the same name it takes "
                           "its lease back at once (default: host and pid)")
    lease_ttl_s: float = knob(3.0, "seconds without renewal after which another replica takes the lease")
    lease_renew_s: float = knob(0.5, "seconds between lease renewals by the leader")
    monitoring_address: str = knob("0.0.0.0", "address of /healthz, /readyz and /metrics")
    monitoring_port: int = knob(15014, "port of /healthz, /readyz and /metrics")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
