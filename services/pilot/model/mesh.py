"""Mesh-wide settings that translation reads (Istio's MeshConfig subset)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeshConfig:
    # The namespace whose resources apply mesh-wide (Istio's istio-system).
    root_namespace: str = "istio-system"
    # Kubernetes DNS suffix: short host `reviews` in namespace `default` is
    # `reviews.default.svc.<domain_suffix>`.
    domain_suffix: str = "cluster.local"
    # ALLOW_ANY: unknown destinations pass through; REGISTRY_ONLY: they are refused.
    outbound_traffic_policy: str = "ALLOW_ANY"
    # Seconds Envoy waits for an upstream connection (Istio's connectTimeout default).
    connect_timeout_s: float = 10.0
    # SPIFFE trust domain of the mesh's workload identities.
    trust_domain: str = "cluster.local"


def resolve_host(host: str, namespace: str, mesh: MeshConfig) -> str:
    """Istio's short-name rule: a host without dots is a service in `namespace`."""
    if "*" in host or "." in host:
        return host
    return f"{host}.{namespace}.svc.{mesh.domain_suffix}"
