"""Citadel's Prometheus metrics, with Istio's names (citadel_server_*)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CitadelMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.csr = Counter("citadel_server_csr_count", "CSR requests received", registry=registry)
        self.issued = Counter("citadel_server_success_cert_issuance_count", "certificates issued",
                              registry=registry)
        self.auth_failures = Counter("citadel_server_authentication_failure_count",
                                     "CSR requests refused as unauthenticated", registry=registry)
        self.csr_parsing_errors = Counter("citadel_server_csr_parsing_err_count",
                                          "CSR requests refused because the CSR is malformed or not allowed",
                                          registry=registry)
        self.sign_errors = Counter("citadel_server_csr_sign_err_count",
                                   "CSR requests refused after authentication, by reason", ["error"],
                                   registry=registry)
        self.latency = Histogram("citadel_server_csr_seconds", "seconds to answer a CSR request, by outcome",
                                 ["outcome"], registry=registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self.root_expiry = Gauge("citadel_server_root_cert_expiry_timestamp",
                                 "Unix time the root certificate expires", registry=registry)
        self.rotation_phase = Gauge("citadel_root_rotation_phase",
                                    "phase of citadel's root rotation: 0 stable, 1 new root published, "
                                    "2 signing with the new root", registry=registry)
        self.rotation_waiting = Gauge("citadel_root_rotation_waiting_holders",
                                      "holders the root rotation waits for", registry=registry)
        self.rotation_steps = Counter("citadel_root_rotation_steps", "root rotation steps taken, by step",
                                      ["step"], registry=registry)
        self.trust_bundle_revision = Gauge("citadel_trust_bundle_revision",
                                           "mesh-trust KV revision of the published trust bundle (0: not yet)",
                                           registry=registry)
