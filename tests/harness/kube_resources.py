"""The resource types the fake Kubernetes API server serves, and label selectors.

By default it serves what a cluster with Istio installed serves: the core types Mizzen reads
(namespaces, services, pods, service accounts, secrets, config maps, endpoint slices) and Istio's CRDs in
the versions Istio's own CRDs declare, including kinds Mizzen does not support, plus every
kind `libs.config` supports in every version it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from libs.config import supported_kinds

Selector = Callable[[Mapping[str, str]], bool]

NETWORKING, SECURITY, TELEMETRY = "networking.istio.io", "security.istio.io", "telemetry.istio.io"
_NETWORKING_VERSIONS = ("v1alpha3", "v1beta1", "v1")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group, served under /api
    kind: str
    plural: str
    versions: tuple[str, ...]
    namespaced: bool = True

    @property
    def group_resource(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


CORE_TYPES = (
    ResourceType("", "Namespace", "namespaces", ("v1",), namespaced=False),
    ResourceType("", "Service", "services", ("v1",)),
    ResourceType("", "Pod", "pods", ("v1",)),
    ResourceType("", "ServiceAccount", "serviceaccounts", ("v1",)),
    ResourceType("", "Secret", "secrets", ("v1",)),
    ResourceType("", "ConfigMap", "configmaps", ("v1",)),
    ResourceType("discovery.k8s.io", "EndpointSlice", "endpointslices", ("v1",)),
)

# As Istio 1.22+ installs them (its CRDs serve one stored object in each listed version).
ISTIO_TYPES = (
    *(ResourceType(NETWORKING, kind, plural, _NETWORKING_VERSIONS) for kind, plural in (
        ("VirtualService", "virtualservices"), ("DestinationRule", "destinationrules"),
        ("Gateway", "gateways"), ("ServiceEntry", "serviceentries"), ("Sidecar", "sidecars"),
        ("WorkloadEntry", "workloadentries"), ("WorkloadGroup", "workloadgroups"))),
    ResourceType(NETWORKING, "EnvoyFilter", "envoyfilters", ("v1alpha3",)),
    ResourceType(NETWORKING, "ProxyConfig", "proxyconfigs", ("v1beta1",)),
    *(ResourceType(SECURITY, kind, plural, ("v1beta1", "v1")) for kind, plural in (
        ("AuthorizationPolicy", "authorizationpolicies"), ("PeerAuthentication", "peerauthentications"),
        ("RequestAuthentication", "requestauthentications"))),
    ResourceType(TELEMETRY, "Telemetry", "telemetries", ("v1alpha1", "v1")),
)


def istio_types(only_versions: Iterable[str] | None = None) -> list[ResourceType]:
    """Istio's CRDs merged with Mizzen's supported kinds; `only_versions` mimics an older
    Istio whose CRDs serve fewer versions (kinds left with none are dropped)."""
    merged = {t.kind: t for t in ISTIO_TYPES}
    for info in supported_kinds():
        if not info.group:
            continue  # the mesh config: a core ConfigMap, served with the core types
        known = merged.get(info.kind)
        versions = tuple(dict.fromkeys((*(known.versions if known else ()), *info.versions)))
        merged[info.kind] = ResourceType(info.group, info.kind, info.plural, versions)
    if only_versions is not None:
        keep = set(only_versions)
        merged = {k: replace(t, versions=tuple(v for v in t.versions if v in keep)) for k, t in merged.items()}
    return [t for t in merged.values() if t.versions]


def default_types() -> list[ResourceType]:
    return [*CORE_TYPES, *istio_types()]


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def by_priority(versions: Iterable[str]) -> list[str]:
    """Kubernetes' version order, most preferred first: v2, v1, v1beta2, v1beta1, v1alpha1."""

    def key(version: str) -> tuple[int, int, int, str]:
        match = _KUBE_VERSION.match(version)
        if match is None:
            return (3, 0, 0, version)
        stability = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
        return (stability, -int(match.group(1)), -int(match.group(3) or 0), "")

    return sorted(versions, key=key)


_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)|\s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$")


def parse_selector(text: str) -> Selector:
    """A label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`."""
    requirements: list[Selector] = []
    for part in re.split(r",(?![^()]*\))", text or ""):
        if not part.strip():
            continue
        match = _REQUIREMENT.match(part)
        if match is None:
            raise ValueError(f"unable to parse requirement: {part!r}")
        requirements.append(_requirement(match))
    return lambda labels: all(requirement(labels) for requirement in requirements)


def _requirement(match: re.Match[str]) -> Selector:
    key, op, value, setop = match["key"], match["op"], match["value"], match["setop"]
    if match["neg"]:
        return lambda labels: key not in labels
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    if setop:
        values = {v.strip() for v in match["values"].split(",") if v.strip()}
        if setop == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels
