"""SPIFFE ids as Istio issues them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>."""

from __future__ import annotations

import re
from dataclasses import dataclass

from libs.pki._errors import InvalidSpiffeId

SCHEME = "spiffe://"
# Trust domains per the SPIFFE spec: lowercase letters, digits, dots, dashes, underscores.
_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]{1,255}$")
# Kubernetes names: a namespace is a DNS label, a service account a DNS subdomain.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class SpiffeId:
    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        if not _TRUST_DOMAIN.match(self.trust_domain):
            raise InvalidSpiffeId(self._raw(), f"trust domain {self.trust_domain!r} is not a valid name")
        problem = workload_name_problem(self.namespace, self.service_account)
        if problem:
            raise InvalidSpiffeId(self._raw(), problem)

    def _raw(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def uri(self) -> str:
        return self._raw()

    def __str__(self) -> str:
        return self._raw()


def workload_name_problem(namespace: str, service_account: str) -> str | None:
    """Why a namespace / service account pair cannot name a workload, or None if it can."""
    if not _NAMESPACE.match(namespace):
        return f"namespace {namespace!r} is not a Kubernetes namespace name (a DNS label)"
    if not _SERVICE_ACCOUNT.match(service_account):
        return f"service account {service_account!r} is not a Kubernetes service account name"
    return None


def parse_spiffe_id(uri: str) -> SpiffeId:
    if not uri.startswith(SCHEME):
        raise InvalidSpiffeId(uri, "it does not start with spiffe://")
    trust_domain, _, path = uri[len(SCHEME):].partition("/")
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "ns" or parts[2] != "sa":
        raise InvalidSpiffeId(uri, "its path is not /ns/<namespace>/sa/<service-account>")
    return SpiffeId(trust_domain, parts[1], parts[3])
