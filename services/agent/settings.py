"""The agent's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class AgentSettings:
    """The agent writes its Envoy's bootstrap, then starts and supervises Envoy."""

    pilot_address: str = knob("127.0.0.1:15010", "host:port of pilot's xDS server")
    pilot_tls: bool = knob(False, "reach pilot over TLS (Istio's secure xDS port 15012), verifying its certificate "
                                  "against the mesh's roots (needs identity_enabled: the roots come over SDS)")
    pilot_server_name: str = knob("istiod.istio-system.svc", "DNS name pilot's certificate must carry (and the SNI "
                                                              "sent) when pilot_tls is on")
    node_type: str = knob("sidecar", "sidecar, or router for ingress/egress gateways")
    pod_name: str = knob("", "workload instance name (Kubernetes pod name)")
    namespace: str = knob("default", "namespace of the workload")
    instance_ip: str = knob("127.0.0.1", "IP address of the workload")
    labels: tuple[str, ...] = knob((), "workload labels as k=v, comma separated")
    annotations: tuple[str, ...] = knob((), "workload annotations as k=v, comma separated (e.g. "
                                            "policy.istio.io/check=disable), sent to pilot as ANNOTATIONS")
    service_account: str = knob("default", "service account the workload runs as")
    domain_suffix: str = knob("cluster.local", "cluster DNS suffix")
    bind_address: str = knob("", "address the proxy's listeners bind (empty: 0.0.0.0)")
    interception_mode: str = knob("REDIRECT", "REDIRECT (iptables) or NONE (apps use the sidecar as a proxy)")
    registry_nats_url: str = knob("", "NATS URL of the local mesh's workload registry (mesh-workloads); empty: "
                                      "do not register")
    registry_refresh_s: float = knob(5.0, "seconds between rewrites of the workload's registry entry (the bucket "
                                          "expires entries after 15 s)")
    workload_ports: tuple[str, ...] = knob((), "service port name:workload port pairs for the registry entry, e.g. "
                                               "http:9080 (empty: the service ports themselves)")
    app_ports: tuple[str, ...] = knob((), "without capture: workload port:app port pairs, e.g. 9080:19080 (the "
                                          "sidecar listens on the first, the app on the second)")
    admin_address: str = knob("127.0.0.1", "Envoy admin address (never exposed beyond loopback)")
    admin_port: int = knob(15000, "Envoy admin port")
    stats_port: int = knob(15090, "Envoy Prometheus port (/stats/prometheus); 0 disables it")
    health_port: int = knob(15021, "Envoy readiness port (/healthz/ready); 0 disables it")
    state_dir: Path = knob(Path(".mizzen/agent"), "directory for the bootstrap file")
    envoy_log_level: str = knob("warning", "Envoy's log level")
    envoy_concurrency: int = knob(2, "Envoy worker threads")
    drain_duration_s: float = knob(1.0, "seconds Envoy keeps serving the connections of a replaced listener "
                                        "(Istio's proxyConfig drainDuration; whole seconds, at least 1)")
    xds_api: str = knob("GRPC", "GRPC (state of the world) or DELTA_GRPC")
    xds_retry_base_s: float = knob(0.25, "Envoy's first wait before reconnecting to pilot; doubles (with "
                                         "jitter) each failed attempt")
    xds_retry_max_s: float = knob(1.0, "Envoy's longest wait between reconnects to pilot, so config applied "
                                       "after pilot is back reaches the proxy within about that")
    monitoring_address: str = knob("127.0.0.1", "address of the agent's /healthz, /readyz, /metrics")
    monitoring_port: int = knob(15020, "port of the agent's /healthz, /readyz, /metrics and /app-health/*")
    # -- app probes (Istio's probe rewrite): the kubelet probes the agent, the agent the app --
    kube_app_probers: str = knob(
        "", "JSON object of the app's original probes (httpGet, tcpSocket or grpc, with timeoutSeconds) keyed "
            "by /app-health/<container>/livez|readyz|startupz, as the injector writes it; the agent answers "
            "those paths on its monitoring port by probing the app. Empty: no app probes",
        aliases=("ISTIO_KUBE_APP_PROBERS",))
    app_probe_localhost: bool = knob(
        False, "send app probes to localhost instead of instance_ip (the pod IP, where the kubelet sends them); "
               "Istio's REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION",
        aliases=("REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION",))
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown (Envoy included)")
    bootstrap_override: Path | None = knob(
        None, "JSON or YAML file of Bootstrap fields merged into the generated bootstrap (Istio's "
              "ISTIO_BOOTSTRAP_OVERRIDE): lists are appended, scalars replaced")
    # -- identity (Istio's node agent): key in memory, CSR to citadel, SDS to Envoy --------
    identity_enabled: bool = knob(False, "get a workload certificate from citadel and serve it to Envoy over SDS")
    citadel_address: str = knob("127.0.0.1:8060", "host:port of citadel's CSR API (gRPC over TLS)")
    citadel_root_cert: Path | None = knob(None, "PEM roots citadel's TLS certificate chains to: citadel's "
                                                "root-cert.pem, or on Kubernetes the istio-ca-root-cert ConfigMap; "
                                                "watched, it is also the mesh's trust bundle until mesh-trust is seen")
    citadel_server_name: str = knob("", "TLS server name expected from citadel (empty: the host of citadel_address)")
    citadel_token: str = knob("", "bearer token presented to citadel (prefer citadel_token_file)")
    citadel_token_file: Path | None = knob(None, "file holding the bearer token, re-read for every CSR")
    trust_domain: str = knob("cluster.local", "SPIFFE trust domain of the workload's identity")
    workload_key_type: str = knob("ec-p256", "workload key: ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096")
    cert_ttl_s: int = knob(86400, "seconds of validity requested for the workload certificate")
    cert_rotation_fraction: float = knob(0.8, "renew after this fraction of the certificate's lifetime (0-1)")
    citadel_retry_initial_s: float = knob(0.1, "seconds before the first retry of a failed CSR; doubles each time")
    citadel_retry_max_s: float = knob(30.0, "seconds between CSR retries, at most")
    citadel_timeout_s: float = knob(10.0, "seconds a CSR call may take before it is retried")
    citadel_root_wait_s: float = knob(60.0, "seconds to wait at start for citadel_root_cert to appear (citadel "
                                            "may write it after this agent starts) before failing")
    trust_nats_url: str = knob("", "NATS URL to watch the trust bundle (KV mesh-trust); empty: trust the "
                                   "root citadel returns")
    root_retention_s: float = knob(86400.0, "seconds a root dropped from the trust bundle without a rotation "
                                            "(while it was the signing root) stays trusted, so peers whose "
                                            "certificates it signed keep working until they renew; a root citadel's "
                                            "rotation retired goes at once")
    root_cert_poll_interval_s: float = knob(2.0, "seconds between reads of citadel_root_cert for a new bundle "
                                                 "(0: read it once)")
    trust_report_interval_s: float = knob(5.0, "seconds between rewrites of the proxy's entry in mesh-trust-status "
                                               "(what its Envoy applied, for citadel's root rotation; entries "
                                               "expire after 15 s); written when trust_nats_url is set")
    sds_socket: Path | None = knob(None, "Unix socket of the SDS server (default: <state_dir>/sds.sock)")
    sds_enabled: bool = knob(True, "run the SDS server on sds_socket and put the sds-grpc cluster in the bootstrap: "
                                   "Envoy takes the workload certificate, gateway credentials and every TLS file "
                                   "pilot names (file-cert:, file-root:) from it; identity_enabled needs it")
    # -- credentials (Istio's credentialName), served over SDS to router proxies ------------
    credentials_dir: Path | None = knob(None, "directory of gateway credentials: <dir>/<namespace>/<name>/ holds "
                                              "tls.crt, tls.key, ca.crt (or cert, key, cacert), served as "
                                              "kubernetes://<name>")
    credentials_from_kubernetes: bool = knob(False, "serve kubernetes://<name> from the Secrets of the proxy's "
                                                    "namespace (needs list and watch on secrets there)")
    kubeconfig: Path | None = knob(None, "kubeconfig for credentials_from_kubernetes (unset: the pod's service "
                                         "account)")
    credentials_poll_interval_s: float = knob(0.5, "seconds between checks of credential and certificate files "
                                                   "for changes")

    @property
    def annotation_map(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.annotations if "=" in item)
        return {key.strip(): value.strip() for key, value in pairs}

    @property
    def label_map(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.labels if "=" in item)
        return {key.strip(): value.strip() for key, value in pairs}

    @property
    def sds_socket_path(self) -> Path:
        return self.sds_socket or self.state_dir / "sds.sock"

    @property
    def node_id(self) -> str:
        pod = self.pod_name or "proxy"
        return f"{self.node_type}~{self.instance_ip}~{pod}.{self.namespace}~{self.namespace}.svc.{self.domain_suffix}"
