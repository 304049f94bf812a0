"""Pilot's settings: one knob per field, from flags or MIZZEN_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.runtime import knob


@dataclass(frozen=True)
class PilotSettings:
    """Pilot serves Envoy configuration (ADS) built from mesh-config and the registries."""

    nats_url: str = knob("nats://127.0.0.1:4222", "NATS server URL")
    nats_grace_s: float = knob(10.0, "seconds NATS may be away before /readyz turns false (a blip stays unseen)")
    xds_address: str = knob("0.0.0.0", "address the plain-text xDS gRPC server binds")
    xds_port: int = knob(15010, "port of the plain-text xDS gRPC server (Istio: 15010)")
    xds_reuse_port: bool = knob(True, "let several pilots on one host share the xDS ports (SO_REUSEPORT): the "
                                      "kernel spreads new streams over them, and a replica's proxies reconnect "
                                      "to the others when it dies")
    xds_tls_port: int = knob(0, "port of the xDS gRPC server over TLS (Istio: 15012), its certificate from citadel; "
                                "0: off")
    citadel_address: str = knob("127.0.0.1:8060", "host:port of citadel's CSR API, for the secure xDS certificate")
    citadel_root_cert: Path | None = knob(None, "PEM root certificate citadel's TLS certificate chains to")
    citadel_server_name: str = knob("", "TLS server name expected from citadel (empty: the host of citadel_address)")
    citadel_token_file: Path | None = knob(None, "file holding pilot's service-account token for citadel, re-read "
                                                 "for every CSR")
    service_account: str = knob("istio-pilot-service-account", "pilot's service account (in system_namespace): its "
                                                               "SPIFFE identity")
    serving_dns_names: tuple[str, ...] = knob(("istiod.istio-system.svc", "istio-pilot.istio-system.svc"),
                                              "DNS names of pilot's secure xDS certificate, comma separated "
                                              "(citadel must grant them to pilot's identity)")
    serving_cert_ttl_s: int = knob(86400, "seconds of validity asked for the secure xDS certificate")
    cert_rotation_fraction: float = knob(0.5, "renew the secure xDS certificate after this fraction of its life")
    monitoring_address: str = knob("0.0.0.0", "address of /healthz, /readyz, /metrics and /debug")
    monitoring_port: int = knob(15014, "port of /healthz, /readyz, /metrics and /debug (Istio: 15014)")
    debounce_quiet_s: float = knob(0.1, "seconds without a config change before a push starts")
    debounce_max_s: float = knob(10.0, "seconds a push may be held back by a stream of changes, at most")
    endpoint_debounce_quiet_s: float = knob(0.01, "seconds without an endpoint change before an endpoint push")
    endpoint_debounce_max_s: float = knob(0.1, "seconds an endpoint push may be held back, at most")
    push_concurrency: int = knob(100, "streams that may build and write a push at once (Istio's "
                                      "PILOT_PUSH_THROTTLE): bounds the memory of a push to many proxies; requests, "
                                      "ACKs and pushes of a few endpoints take no slot; 0: no limit")
    full_collection_interval_s: float = knob(300.0, "each push freezes the heap out of Python's cyclic garbage "
                                                    "collector (its full collections took 0.2 s per push at 1,000 "
                                                    "proxies); seconds between full collections of all of it; 0: "
                                                    "leave the collector as it is")
    gc_young_threshold: int = knob(50_000, "allocations between young garbage collections while the heap is "
                                           "frozen at each push (CPython's 700 walked each push's new objects "
                                           "again and again: ~20% of a VirtualService push at 1,000 proxies); "
                                           "0: CPython's own")
    trim_heap: bool = knob(True, "give memory each push freed back to the system at the next push (glibc's "
                                 "malloc_trim, ~3 ms a push at 1,000 proxies): the endpoint pushes' freed "
                                 "buffers otherwise stay in pilot's RSS")
    root_namespace: str = knob("istio-system", "namespace whose config applies mesh-wide (the mesh config's "
                                               "rootNamespace overrides it)")
    system_namespace: str = knob("istio-system", "namespace of the `istio` ConfigMap holding the mesh config "
                                                 "(Istio's istiod namespace)")
    domain_suffix: str = knob("cluster.local", "DNS suffix of services (reviews.default.svc.<suffix>)")
    trust_domain: str = knob("cluster.local", "SPIFFE trust domain of workload identities (mTLS peers are checked "
                                              "against it)")
    outbound_traffic_policy: str = knob("ALLOW_ANY", "ALLOW_ANY or REGISTRY_ONLY for unknown destinations")
    workload_ttl_s: float = knob(15.0, "seconds a registered workload stays in mesh-workloads without a refresh "
                                       "(used when pilot creates the bucket; agents refresh at a third of it)")
    registries: tuple[str, ...] = knob(("nats",), "service registries beside ServiceEntries, comma separated: nats "
                                                  "(the local mesh's mesh-workloads), kubernetes")
    kube_config: Path | None = knob(None, "kubeconfig of the Kubernetes registry (unset: the pod's service account)")
    log_level: str = knob("info", "debug, info, warning or error")
    log_json: bool | None = knob(None, "JSON logs (default: when stderr is not a terminal)")
    shutdown_grace_s: float = knob(5.0, "seconds allowed for a graceful shutdown")
