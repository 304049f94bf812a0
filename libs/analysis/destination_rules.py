"""DestinationRules: TLS that does not verify the server (IST0128, IST0129), and subsets
that select no workload (IST0173) (istio/istio `analyzers/destinationrule/
{ca-certificates,subset}.go`).

The certificate check leaves out settings that verify some other way or say they will not:
a `credentialName` (the CA comes with the secret) or `insecureSkipVerify: true`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog
from libs.analysis._messages import (
    DestinationRuleSubsetNotSelectPods,
    Message,
    NoServerCertificateVerificationDestinationLevel,
    NoServerCertificateVerificationPortLevel,
)

_VERIFYING_MODES = ("SIMPLE", "MUTUAL")


def _unverified(tls: Any) -> str | None:
    """The TLS mode, when these client settings originate TLS without checking the server."""
    if not isinstance(tls, dict) or tls.get("mode") not in _VERIFYING_MODES:
        return None
    if tls.get("caCertificates") or tls.get("credentialName") or tls.get("insecureSkipVerify"):
        return None
    return str(tls["mode"])


def _ca_certificates(catalog: Catalog) -> Iterator[Message]:
    for rule in catalog.of_kind("DestinationRule"):
        policy = rule.spec.get("trafficPolicy") or {}
        name, host = f"{rule.namespace}/{rule.name}", str(rule.spec.get("host") or "")
        mode = _unverified(policy.get("tls"))
        if mode:
            yield Message(NoServerCertificateVerificationDestinationLevel, catalog.ref(rule),
                          (name, rule.namespace, mode, host))
        for setting in policy.get("portLevelSettings") or ():
            mode = _unverified(setting.get("tls"))
            if mode:
                port = (setting.get("port") or {}).get("number", "")
                yield Message(NoServerCertificateVerificationPortLevel, catalog.ref(rule),
                              (name, rule.namespace, mode, host, port))


def _subsets(catalog: Catalog) -> Iterator[Message]:
    for rule in catalog.of_kind("DestinationRule"):
        service = catalog.service(str(rule.spec.get("host") or ""), rule.namespace)
        if service is None or service.dns_only:
            continue
        for subset in rule.spec.get("subsets") or ():
            wanted = {str(k): str(v) for k, v in (subset.get("labels") or {}).items()}
            if not wanted:
                continue
            if not any(all(dict(labels).get(k) == v for k, v in wanted.items()) for labels in service.endpoint_labels):
                yield Message(DestinationRuleSubsetNotSelectPods, catalog.ref(rule), (subset.get("name"),))


CA_CERTIFICATES = Analyzer("destinationrule.CaCertificateAnalyzer",
                           "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL", _ca_certificates,
                           ("DestinationRule",))
SUBSET_SELECTS_PODS = Analyzer("destinationrule.SubsetSelectPodAnalyzer",
                               "Checks if pods are selected by subsets in destination rules", _subsets,
                               ("DestinationRule", "ServiceEntry", "WorkloadEntry"), needs_platform=True)
