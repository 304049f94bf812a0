"""Citadel's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class CitadelSettings:
    """Citadel signs workload CSRs (Istio's CSR API over gRPC + TLS) and publishes the trust bundle."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS server URL (the trust bundle goes to KV mesh-trust)")
    grpc_address: str = knob("0.0.0.0", "address the CSR API (gRPC over TLS) binds")
    grpc_port: int = knob(8060, "port of the CSR API (Istio 1.1 citadel: 8060); 0 picks a free port")
    monitoring_address: str = knob("0.0.0.0", "address of /healthz, /readyz and /metrics")
    monitoring_port: int = knob(9093, "port of /healthz, /readyz and /metrics (Istio 1.0 citadel: 9093)")
    state_dir: Path = knob(Path(".mizzen/citadel"),
                           "directory for the self-signed root (root-cert.pem, root-key.pem) and token-key")
    cacerts_dir: Path | None = knob(None, "Istio cacerts directory (ca-cert.pem, ca-key.pem, root-cert.pem, "
                                          "cert-chain.pem) to sign as an intermediate; empty: self-signed root")
    ca_store: str = knob("file", "where citadel's self-signed root lives: file (state_dir) or kube (the Secret "
                                 "ca_secret_name in ca_namespace, as Istio keeps it; needs kubeconfig or "
                                 "kube_in_cluster)")
    ca_namespace: str = knob("istio-system", "namespace of the CA Secret (Istio: the citadel's own namespace)")
    ca_secret_name: str = knob("istio-ca-secret", "name of the Secret holding the self-signed root (ca_store=kube)")
    authenticators: tuple[str, ...] = knob(("bootstrap",),
                                           "how CSR callers prove who they are, comma separated: bootstrap "
                                           "(tokens from `mint-token`), kube (service-account tokens checked "
                                           "with a TokenReview; needs kubeconfig or kube_in_cluster), or both")
    token_audiences: tuple[str, ...] = knob(("istio-ca",), "audiences a Kubernetes token must be valid for, "
                                                           "comma separated (Istio's TOKEN_AUDIENCES)")
    kubeconfig: Path | None = knob(None, "kubeconfig for TokenReview and the CA Secret (unset: in-cluster "
                                         "if kube_in_cluster, else no Kubernetes)")
    kube_in_cluster: bool = knob(False, "talk to Kubernetes with the pod's service account (in-cluster config)")
    kube_context: str | None = knob(None, "kubeconfig context (default: the current one)")
    kube_request_timeout_s: float = knob(10.0, "seconds a Kubernetes request (a TokenReview) may take; a CSR "
                                               "waits on it")
    trust_domain: str = knob("cluster.local", "SPIFFE trust domain of issued identities")
    ca_key_type: str = knob("ec-p256", "key of a new self-signed root: ec-p256, ec-p384, rsa-2048 or rsa-4096")
    workload_cert_ttl_s: int = knob(86400, "seconds a workload certificate lives when the CSR asks for none")
    max_workload_cert_ttl_s: int = knob(90 * 86400,
                                        "seconds a workload certificate may live at most; longer requests "
                                        "are refused with INVALID_ARGUMENT (Istio: 90 days)")
    cert_backdate_s: int = knob(60, "seconds NotBefore is set in the past, for peers with a slow clock")
    serving_hosts: tuple[str, ...] = knob(
        ("localhost", "127.0.0.1", "citadel", "istio-citadel", "istio-citadel.istio-system.svc"),
        "DNS names and IPs in the CSR API's serving certificate, comma separated")
    serving_cert_ttl_s: int = knob(86400, "seconds the CSR API's serving certificate lives; renewed at half")
    dns_grants: tuple[str, ...] = knob(
        ("istio-system/istio-sidecar-injector-service-account=istio-sidecar-injector.istio-system.svc",
         "istio-system/istio-galley-service-account=istio-galley.istio-system.svc",
         "istio-system/istio-pilot-service-account=istiod.istio-system.svc",
         "istio-system/istio-pilot-service-account=istio-pilot.istio-system.svc"),
        "DNS names a caller may have in its certificate beside its SPIFFE id, comma separated "
        "namespace/serviceaccount=dns.name entries (the sidecar injector's and galley's webhook Service names "
        "and pilot's secure xDS names, as Istio 1.0's citadel granted them); every other caller may ask for its "
        "SPIFFE id only")
    root_cert_configmaps: bool = knob(False, "write the trust bundle as the ConfigMap istio-ca-root-cert (key "
                                             "root-cert.pem) into every namespace but Kubernetes' own, and keep it "
                                             "there (Istio's namespace controller); needs kubeconfig or "
                                             "kube_in_cluster")
    webhook_ca_bundles: tuple[str, ...] = knob((), "admission webhook configurations whose webhooks' caBundle "
                                                   "citadel keeps set to the trust bundle, comma separated "
                                                   "mutating/<name> or validating/<name> entries; needs kubeconfig "
                                                   "or kube_in_cluster")
    root_cert_ttl_s: int = knob(3650 * 86400, "seconds a new self-signed root lives (the first one and each "
                                              "rotation's; Istio: 10 years)")
    root_rotation_auto_fraction: float = knob(0.2, "rotate the self-signed root by itself once less than this "
                                                   "fraction of its life remains (Istio's root rotator: 20%); 0: "
                                                   "only on demand (POST /ca/rotation, mizzenctl x ca rotate)")
    root_rotation_min_phase_s: float = knob(300.0, "seconds each phase of a root rotation lasts at least, besides "
                                                   "waiting for every proxy that reports on NATS: the bound for "
                                                   "those that cannot (Kubernetes pods reading istio-ca-root-cert, "
                                                   "which the kubelet refreshes within about two minutes)")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
