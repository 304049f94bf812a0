"""The sidecar injector's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class InjectorSettings:
    """The sidecar injector: Kubernetes' mutating admission webhook adding Istio's sidecar to pods."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS server URL (the mesh config comes from KV mesh-config)")
    system_namespace: str = knob("istio-system", "namespace of the mesh config (the ConfigMap `istio`)")
    inject_config_file: Path | None = knob(
        None, "the `config` key of Istio's istio-sidecar-injector ConfigMap, as mounted (policy, "
              "neverInjectSelector, alwaysInjectSelector, injectedAnnotations); unset: policy enabled")
    inject_values_file: Path | None = knob(
        None, "the `values` key of that ConfigMap (images, proxy resources, caAddress, ...); unset: defaults")
    config_poll_interval_s: float = knob(1.0, "seconds between checks of the injection config files for changes")
    webhook_address: str = knob("0.0.0.0", "address of the webhook (HTTPS, path /inject)")
    webhook_port: int = knob(15017, "port of the webhook (Istio's 15017)")
    citadel_address: str = knob("istio-citadel.istio-system.svc:8060", "host:port of citadel's CSR API")
    citadel_root_cert: Path = knob(Path("/var/run/secrets/istio/root-cert.pem"),
                                   "PEM root certificate citadel's TLS certificate chains to")
    citadel_server_name: str = knob("", "TLS server name expected from citadel (empty: the host of citadel_address)")
    citadel_token_file: Path = knob(Path("/var/run/secrets/tokens/istio-token"),
                                    "bearer token presented to citadel (a projected service-account token with "
                                    "audience istio-ca, or a bootstrap token), re-read for every CSR")
    trust_domain: str = knob("cluster.local", "SPIFFE trust domain of the injector's identity")
    namespace: str = knob("istio-system", "namespace the injector runs in (its SPIFFE identity)")
    service_account: str = knob("istio-sidecar-injector-service-account",
                                "service account the injector runs as (its SPIFFE identity)")
    serving_dns_names: tuple[str, ...] = knob(
        ("istio-sidecar-injector.istio-system.svc",),
        "DNS names in the webhook's certificate, comma separated: the Service the API server calls "
        "(citadel must grant them to the injector's identity, its --dns-grants)")
    cert_ttl_s: int = knob(86400, "seconds of validity requested for the webhook's certificate")
    cert_rotation_fraction: float = knob(0.5, "renew after this fraction of the certificate's lifetime (0-1)")
    citadel_retry_initial_s: float = knob(0.2, "seconds before the first retry of a failed CSR; doubles each time")
    citadel_retry_max_s: float = knob(30.0, "seconds between CSR retries, at most")
    citadel_timeout_s: float = knob(10.0, "seconds a CSR call may take before it is retried")
    monitoring_address: str = knob("0.0.0.0", "address of /healthz, /readyz and /metrics")
    monitoring_port: int = knob(15014, "port of /healthz, /readyz and /metrics")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
