"""The resource types the fake Kubernetes API server serves, and label and field selectors.

By default it serves what a cluster with Istio installed serves: the core types Mizzen reads
(namespaces, nodes, services, pods, service accounts, secrets, config maps, endpoint slices) and Istio's CRDs in
the versions Istio's own CRDs declare, including kinds Mizzen does not support, plus every
kind `libs.config` supports in every version it accepts.  `cluster_types()` is instead a
cluster before anything is installed: the core types and the built-in kinds an installation
applies (Deployments, StatefulSets, PodDisruptionBudgets, HorizontalPodAutoscalers, RBAC, webhook
configurations, CRDs), with no Istio kinds until their CRDs are applied (`crd_type`).  Each
type carries what discovery tells kubectl (short names, categories) and, for CRDs, the
printer columns of `kubectl get`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from libs.config import supported_kinds

Selector = Callable[[Mapping[str, str]], bool]
FieldSelector = Callable[[Mapping[str, Any]], bool]  # on the whole object

NETWORKING, SECURITY, TELEMETRY = "networking.istio.io", "security.istio.io", "telemetry.istio.io"
_NETWORKING_VERSIONS = ("v1alpha3", "v1beta1", "v1")
_BUILT_IN_GROUPS = ("", "apps", "batch", "policy", "autoscaling", "discovery.k8s.io", "networking.k8s.io",
                    "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io")


@dataclass(frozen=True)
class PrinterColumn:
    """A CRD's `additionalPrinterColumns` entry: a column of `kubectl get`."""

    name: str
    json_path: str  # a simple path such as `.spec.hosts`
    type: str = "string"  # string, integer, number, boolean or date
    description: str = ""
    priority: int = 0  # 1: shown only by `kubectl get -o wide`


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date",
                    "CreationTimestamp is a timestamp representing the server time when this object was created.")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group, served under /api
    kind: str
    plural: str
    versions: tuple[str, ...]
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    columns: tuple[PrinterColumn, ...] = (AGE,)  # a CRD's printer columns (a CRD without any gets Age)

    @property
    def group_resource(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def group_resource_name(self) -> str:
        """As the API server names it in messages: `services`, `virtualservices.networking.istio.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        """Served from a CRD (Istio's kinds), not built into the API server."""
        return self.group not in _BUILT_IN_GROUPS


# Printer columns of the core types are computed in kube_tables, as the API server's printers do.
CORE_TYPES = (
    ResourceType("", "Namespace", "namespaces", ("v1",), namespaced=False, short_names=("ns",)),
    # Pilot's Kubernetes registry reads nodes' topology labels for endpoint localities.
    ResourceType("", "Node", "nodes", ("v1",), namespaced=False, short_names=("no",)),
    ResourceType("", "Service", "services", ("v1",), short_names=("svc",), categories=("all",)),
    ResourceType("", "Pod", "pods", ("v1",), short_names=("po",), categories=("all",)),
    ResourceType("", "ServiceAccount", "serviceaccounts", ("v1",), short_names=("sa",)),
    ResourceType("", "Secret", "secrets", ("v1",)),
    ResourceType("", "ConfigMap", "configmaps", ("v1",), short_names=("cm",)),
    ResourceType("discovery.k8s.io", "EndpointSlice", "endpointslices", ("v1",)),
)

RBAC, ADMISSION = "rbac.authorization.k8s.io", "admissionregistration.k8s.io"
APIEXTENSIONS = "apiextensions.k8s.io"
# The built-in kinds an installation (deploy/kubernetes) applies beside the core types.
INSTALL_TYPES = (
    ResourceType("apps", "Deployment", "deployments", ("v1",), short_names=("deploy",), categories=("all",)),
    ResourceType("apps", "StatefulSet", "statefulsets", ("v1",), short_names=("sts",), categories=("all",)),
    ResourceType("policy", "PodDisruptionBudget", "poddisruptionbudgets", ("v1",), short_names=("pdb",)),
    ResourceType("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", ("v2", "v1"),
                 short_names=("hpa",), categories=("all",)),
    ResourceType(RBAC, "ClusterRole", "clusterroles", ("v1",), namespaced=False),
    ResourceType(RBAC, "ClusterRoleBinding", "clusterrolebindings", ("v1",), namespaced=False),
    ResourceType(RBAC, "Role", "roles", ("v1",)),
    ResourceType(RBAC, "RoleBinding", "rolebindings", ("v1",)),
    ResourceType(ADMISSION, "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", ("v1",),
                 namespaced=False),
    ResourceType(ADMISSION, "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", ("v1",),
                 namespaced=False),
    ResourceType(APIEXTENSIONS, "CustomResourceDefinition", "customresourcedefinitions", ("v1",),
                 namespaced=False, short_names=("crd", "crds"), categories=("api-extensions",)),
)


def _istio(group: str, kind: str, plural: str, versions: tuple[str, ...], short_names: tuple[str, ...] = (),
           *columns: PrinterColumn) -> ResourceType:
    return ResourceType(group, kind, plural, versions, short_names=short_names,
                        categories=("istio-io", group.replace(".", "-")), columns=(*columns, AGE))


def _column(name: str, path: str, description: str) -> PrinterColumn:
    return PrinterColumn(name, path, "string", description)


# As Istio 1.22+ installs them (its CRDs serve one stored object in each listed version), with
# their short names, categories and printer columns.
ISTIO_TYPES = (
    _istio(NETWORKING, "VirtualService", "virtualservices", _NETWORKING_VERSIONS, ("vs",),
           _column("Gateways", ".spec.gateways", "The names of gateways and sidecars that should apply these routes"),
           _column("Hosts", ".spec.hosts", "The destination hosts to which traffic is being sent")),
    _istio(NETWORKING, "DestinationRule", "destinationrules", _NETWORKING_VERSIONS, ("dr",),
           _column("Host", ".spec.host", "The name of a service from the service registry")),
    _istio(NETWORKING, "Gateway", "gateways", _NETWORKING_VERSIONS, ("gw",)),
    _istio(NETWORKING, "ServiceEntry", "serviceentries", _NETWORKING_VERSIONS, ("se",),
           _column("Hosts", ".spec.hosts", "The hosts associated with the ServiceEntry"),
           _column("Location", ".spec.location", "Whether the service is external to the mesh or part of the "
                   "mesh (MESH_EXTERNAL or MESH_INTERNAL)"),
           _column("Resolution", ".spec.resolution", "Service resolution mode for the hosts (NONE, STATIC, or DNS)")),
    _istio(NETWORKING, "Sidecar", "sidecars", _NETWORKING_VERSIONS),
    _istio(NETWORKING, "WorkloadEntry", "workloadentries", _NETWORKING_VERSIONS, ("we",),
           _column("Address", ".spec.address", "Address associated with the network endpoint.")),
    _istio(NETWORKING, "WorkloadGroup", "workloadgroups", _NETWORKING_VERSIONS, ("wg",)),
    _istio(NETWORKING, "EnvoyFilter", "envoyfilters", ("v1alpha3",)),
    _istio(NETWORKING, "ProxyConfig", "proxyconfigs", ("v1beta1",)),
    _istio(SECURITY, "AuthorizationPolicy", "authorizationpolicies", ("v1beta1", "v1"), ("ap",),
           _column("Action", ".spec.action", "The operation to take.")),
    _istio(SECURITY, "PeerAuthentication", "peerauthentications", ("v1beta1", "v1"), ("pa",),
           _column("Mode", ".spec.mtls.mode", "Defines the mTLS mode used for peer authentication.")),
    _istio(SECURITY, "RequestAuthentication", "requestauthentications", ("v1beta1", "v1"), ("ra",)),
    _istio(TELEMETRY, "Telemetry", "telemetries", ("v1alpha1", "v1"), ("telemetry",)),
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
        merged[info.kind] = (replace(known, versions=versions) if known is not None and known.plural == info.plural
                             else _istio(info.group, info.kind, info.plural, versions))
    if only_versions is not None:
        keep = set(only_versions)
        merged = {k: replace(t, versions=tuple(v for v in t.versions if v in keep)) for k, t in merged.items()}
    return [t for t in merged.values() if t.versions]


def default_types() -> list[ResourceType]:
    return [*CORE_TYPES, *istio_types()]


def cluster_types() -> list[ResourceType]:
    """A cluster before Istio: what `kubectl apply -f deploy/kubernetes` needs, no Istio CRDs."""
    return [*CORE_TYPES, *INSTALL_TYPES]


def is_crd(rtype: ResourceType) -> bool:
    return rtype.group_resource == (APIEXTENSIONS, "customresourcedefinitions")


class InvalidCrd(ValueError):
    """A CustomResourceDefinition the API server would refuse (422 Invalid)."""


def crd_type(crd: Mapping[str, Any]) -> ResourceType:
    """The resource type an apiextensions.k8s.io/v1 CRD makes the server serve, checked as the
    API server checks a v1 CRD: its name is `<plural>.<group>`, it serves a version, exactly one
    version is stored, and every version has a structural schema (an object at its root)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group") or "", names.get("plural") or "", names.get("kind") or ""
    name = (crd.get("metadata") or {}).get("name")
    problems = []
    if not group or not plural or not kind:
        problems.append("spec.group, spec.names.plural and spec.names.kind: Required value")
    elif name != f"{plural}.{group}":
        problems.append(f"metadata.name: Invalid value: {name!r}: must be spec.names.plural+\".\"+spec.group")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        problems.append(f"spec.scope: Unsupported value: {spec.get('scope')!r}: supported values: "
                        '"Cluster", "Namespaced"')
    versions = spec.get("versions") or []
    if sum(1 for v in versions if v.get("storage")) != 1:
        problems.append("spec.versions: Invalid value: must have exactly one version marked as storage version")
    for i, version in enumerate(versions):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, Mapping) or schema.get("type") != "object":
            problems.append(f"spec.versions[{i}].schema.openAPIV3Schema.type: Required value: must be object "
                            "at the root")
    served = tuple(by_priority(v["name"] for v in versions if v.get("served") and v.get("name")))
    if not served:
        problems.append("spec.versions: Invalid value: must have at least one served version")
    if problems:
        raise InvalidCrd("; ".join(problems))
    storage = next(v for v in versions if v.get("storage"))
    # As on a real server: declared columns replace the default Age column.
    columns = tuple(PrinterColumn(c["name"], c["jsonPath"], c.get("type", "string"), c.get("description", ""),
                                  int(c.get("priority", 0)))
                    for c in storage.get("additionalPrinterColumns") or ())
    return ResourceType(group, kind, plural, served, namespaced=spec["scope"] == "Namespaced",
                        short_names=tuple(names.get("shortNames") or ()),
                        categories=tuple(names.get("categories") or ()), columns=columns or (AGE,))


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


# Beyond metadata.name and metadata.namespace (every type), the fields the API server lets a
# field selector name, per type.
_SELECTABLE_FIELDS = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
}
_BOOLEAN_FIELDS = ("spec.hostNetwork", "spec.unschedulable")  # unset reads as "false", as Go's zero value
_FIELD_REQUIREMENT = re.compile(r"^\s*(?P<field>[A-Za-z0-9._-]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$")


class FieldSelectorError(ValueError):
    """A field selector the API server would refuse (400 BadRequest)."""


def parse_field_selector(text: str, rtype: ResourceType) -> FieldSelector:
    """A field selector as the API server evaluates it: `f=v`, `f==v`, `f!=v`, comma-separated,
    on fields this type makes selectable (a missing field compares as "")."""
    allowed = {"metadata.name", "metadata.namespace", *_SELECTABLE_FIELDS.get(rtype.group_resource, ())}
    requirements: list[FieldSelector] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _FIELD_REQUIREMENT.match(part)
        if match is None:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        if match["field"] not in allowed:
            raise FieldSelectorError(f"field label not supported: {match['field']}")
        requirements.append(_field_requirement(match["field"], match["op"] != "!=", match["value"]))
    return lambda obj: all(requirement(obj) for requirement in requirements)


def _field_requirement(path: str, equal: bool, value: str) -> FieldSelector:
    def check(obj: Mapping[str, Any]) -> bool:
        current: Any = obj
        for part in path.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        if current is None and path in _BOOLEAN_FIELDS:
            current = False
        text = ("true" if current else "false") if isinstance(current, bool) else ("" if current is None
                                                                                   else str(current))
        return (text == value) == equal

    return check
