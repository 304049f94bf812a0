"""The security half of `x describe pod`: which PeerAuthentications and
AuthorizationPolicies apply to a workload, its effective mTLS mode, and how its clients
reach it.  Istio's rules (pilot/pkg/security/authn ComposePeerAuthentication, istioctl's
findMatchedConfigs): a policy applies when it sits in the root namespace or the workload's,
and its selector (none: every workload) matches the workload's labels.  Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.mizzenctl.describe_rules import selects

__all__ = ["EffectiveMtls", "applied", "client_tls", "effective_mtls", "policy_name"]

Json = dict[str, Any]
DEFAULT_MODE = "PERMISSIVE"
# The SDS name of the workload's own certificate (Istio's `default`).
WORKLOAD_SECRET = "default"


def policy_name(resource: Json) -> str:
    meta = resource.get("metadata", {})
    return f"{meta.get('name', '')}.{meta.get('namespace', '')}"


def _selector(resource: Json) -> dict[str, str]:
    return ((resource.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}


def applied(resources: list[Json], namespace: str, labels: dict[str, str], root_namespace: str) -> list[Json]:
    """The policies of the root namespace and `namespace` that select a workload with
    `labels`, root namespace first, then by name."""
    found = [r for r in resources
             if r.get("metadata", {}).get("namespace") in (root_namespace, namespace)
             and selects(_selector(r), labels)]
    return sorted(found, key=lambda r: (r["metadata"].get("namespace") != root_namespace, policy_name(r)))


@dataclass(frozen=True)
class EffectiveMtls:
    mode: str
    per_port: dict[int, str] = field(default_factory=dict)


def _mode(resource: Json) -> str:
    return str(((resource.get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET")


def effective_mtls(resources: list[Json], namespace: str, labels: dict[str, str], root_namespace: str) -> EffectiveMtls:
    """Mesh-wide (root namespace, no selector), then namespace-wide, then the workload's own
    policy, each level overriding the one above unless UNSET; PERMISSIVE when none says."""
    ordered = sorted(resources, key=policy_name)
    mesh = [r for r in ordered if r["metadata"].get("namespace") == root_namespace and not _selector(r)]
    ns = [r for r in ordered if r["metadata"].get("namespace") == namespace and not _selector(r)
          and namespace != root_namespace]
    workload = [r for r in ordered if r["metadata"].get("namespace") == namespace and _selector(r)
                and selects(_selector(r), labels)]
    mode = DEFAULT_MODE
    for level in (mesh, ns, workload):
        if level and _mode(level[0]) != "UNSET":
            mode = _mode(level[0])
    per_port: dict[int, str] = {}
    if workload:
        for port, setting in sorted(((workload[0].get("spec") or {}).get("portLevelMtls") or {}).items()):
            port_mode = str((setting or {}).get("mode") or "UNSET")
            per_port[int(port)] = mode if port_mode == "UNSET" else port_mode
    return EffectiveMtls(mode, per_port)


def client_tls(cluster: Json | None) -> str:
    """How clients reach a service, from their outbound cluster (pilot's mtls.secure_cluster):
    the workload certificate on the transport socket is ISTIO_MUTUAL, a `tlsMode-istio`
    socket match is auto mTLS (mTLS to endpoints with a sidecar), other TLS is the
    DestinationRule's SIMPLE or MUTUAL origination."""
    if cluster is None:
        return "unknown (the proxy has no cluster for it)"
    socket = cluster.get("transport_socket")
    if socket and "tls" in str(socket.get("name", "")):
        common = socket.get("typed_config", {}).get("common_tls_context", {})
        names = {str(c.get("name")) for c in common.get("tls_certificate_sds_secret_configs") or []}
        return "ISTIO_MUTUAL" if WORKLOAD_SECRET in names else "TLS (DestinationRule SIMPLE or MUTUAL)"
    if any(match.get("name") == "tlsMode-istio" for match in cluster.get("transport_socket_matches") or []):
        return "auto (ISTIO_MUTUAL to endpoints with a sidecar, plaintext to the rest)"
    return "off (plaintext)"
