"""A DestinationRule's TLS against the PeerAuthentication of the workloads behind its
host (IST0113): clients told to send plain text (or their own TLS) to workloads that
require mutual TLS fail, as do clients told to use Istio's mTLS towards workloads that
turned it off.

The server side follows Istio's precedence, as pilot does: a workload's own policy
(selector), then its namespace's, then the root namespace's; UNSET defers; PERMISSIVE by
default.  A DestinationRule without `tls` leaves the client to auto mTLS, which adapts,
so it cannot conflict.  Port-level PeerAuthentication (`portLevelMtls`) is not looked at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog, ServiceView
from libs.analysis._messages import Message, MTLSPolicyConflict, quoted
from libs.analysis._platform import Workload
from libs.config import Resource
from libs.config.validation.hosts import host_matches


def _peer_authentication(catalog: Catalog, workload: Workload) -> tuple[str, Resource | None]:
    policies = catalog.of_kind("PeerAuthentication")

    def selector(policy: Resource) -> dict[str, Any]:
        return (policy.spec.get("selector") or {}).get("matchLabels") or {}

    levels = (
        [p for p in policies if p.namespace == workload.namespace and selector(p) and workload.matches(selector(p))],
        [p for p in policies if p.namespace == workload.namespace and not selector(p)],
        [p for p in policies if p.namespace == catalog.root_namespace and not selector(p)],
    )
    for level in levels:
        if level:
            mode = str((level[0].spec.get("mtls") or {}).get("mode") or "UNSET")
            if mode != "UNSET":
                return mode, level[0]
    return "PERMISSIVE", None


def _client_modes(rule: Resource) -> list[str]:
    """The TLS modes a DestinationRule sets, at the destination and port level."""
    policy = rule.spec.get("trafficPolicy") or {}
    settings = [policy, *(policy.get("portLevelSettings") or ())]
    return [str(s["tls"]["mode"]) for s in settings if isinstance(s.get("tls"), dict) and s["tls"].get("mode")]


def _services(catalog: Catalog, rule: Resource) -> list[ServiceView]:
    host = catalog.fqdn(str(rule.spec.get("host") or ""), rule.namespace)
    return [s for name, s in sorted(catalog.services.items()) if host_matches(host, name) and not s.dns_only]


def _conflicts(catalog: Catalog) -> Iterator[Message]:
    for rule in catalog.of_kind("DestinationRule"):
        modes = _client_modes(rule)
        if not modes:
            continue
        reported: set[tuple[str, str]] = set()
        for service in _services(catalog, rule):
            for workload in service.members:
                if not workload.sidecar:
                    continue
                server, policy = _peer_authentication(catalog, workload)
                for mode in modes:
                    mutual = mode == "ISTIO_MUTUAL"
                    if (server == "STRICT" and not mutual) or (server == "DISABLE" and mutual):
                        policy_name = f"{policy.namespace}/{policy.name}" if policy else "(none)"
                        if (service.hostname, policy_name) in reported:
                            continue
                        reported.add((service.hostname, policy_name))
                        yield Message(MTLSPolicyConflict, catalog.ref(rule),
                                      (service.hostname, quoted(f"{rule.namespace}/{rule.name}"),
                                       "true" if mutual else "false", quoted(policy_name), server))


MTLS = Analyzer("auth.MTLSAnalyzer", "Checks for conflicting mTLS between DestinationRules and PeerAuthentications",
                _conflicts, ("DestinationRule", "PeerAuthentication", "ServiceEntry", "WorkloadEntry", "MeshConfig"),
                needs_platform=True)
