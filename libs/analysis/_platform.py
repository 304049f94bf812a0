"""What the platform holds outside Istio config: Kubernetes Services, the workloads
(pods, workloads registered in the local mesh), namespaces and service accounts.

Analyzers need it to know whether a host, a selector or a principal names something real.
It comes from pilot's registry (`/debug/platformz`, see `from_pilot`) for a live mesh,
from Kubernetes manifests among the files analysed (`from_kubernetes`), or both.
Services and workloads that Istio config defines (ServiceEntry, WorkloadEntry) are not
part of it: the analysis derives those from the
config it analyses, so a file that changes a ServiceEntry is seen as changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = tuple[tuple[str, str], ...]
DEFAULT_DOMAIN = "cluster.local"
# Kubernetes kinds whose pod template makes workloads.
_POD_TEMPLATES = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}


def labels_of(value: Any) -> Labels:
    if not isinstance(value, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def selector_text(selector: Mapping[str, str]) -> str:
    """Kubernetes' selector string: `app=reviews,version=v1`, keys sorted."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


@dataclass(frozen=True)
class Port:
    name: str
    number: int
    # Kubernetes: the transport (TCP, UDP, SCTP); registry services: Istio's protocol.
    protocol: str = "TCP"
    app_protocol: str = ""
    # As written: a number or a container port's name ("" when unknown).
    target_port: str = ""


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service (or any registry's service that no Istio resource defines)."""

    name: str
    namespace: str
    hostname: str
    ports: tuple[Port, ...] = ()
    # The pods it selects by label (a manifest), or None when its endpoints are given by address.
    selector: Labels | None = None
    addresses: tuple[str, ...] = ()
    external_name: bool = False


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    labels: Labels = ()
    service_account: str = "default"
    address: str = ""
    # A sidecar fronts it (so PeerAuthentication applies to it).
    sidecar: bool = True

    def matches(self, selector: Mapping[str, str] | Labels) -> bool:
        wanted = dict(selector)
        have = dict(self.labels)
        return all(have.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class Platform:
    services: tuple[Service, ...] = ()
    workloads: tuple[Workload, ...] = ()
    namespaces: frozenset[str] = frozenset()
    # (namespace, name) of ServiceAccounts known beyond those workloads run as.
    service_accounts: frozenset[tuple[str, str]] = frozenset()
    # Where it was read from, for messages about it ("pilot", a file name).
    origins: Mapping[tuple[str, str, str], str] = field(default_factory=dict, compare=False)

    def merged(self, other: Platform) -> Platform:
        """`other` over this one: a service or workload it names replaces this one's."""
        services = {(s.namespace, s.name): s for s in self.services}
        services.update({(s.namespace, s.name): s for s in other.services})
        workloads = {(w.namespace, w.name): w for w in self.workloads}
        workloads.update({(w.namespace, w.name): w for w in other.workloads})
        return Platform(tuple(services.values()), tuple(workloads.values()), self.namespaces | other.namespaces,
                        self.service_accounts | other.service_accounts, {**self.origins, **other.origins})


# -- from pilot's registry --------------------------------------------------------------


def from_pilot(platformz: Mapping[str, Any]) -> Platform:
    """Pilot's `/debug/platformz`, less what Istio config defined (ServiceEntry services,
    WorkloadEntry workloads): those come from the config analysed."""
    services = []
    for body in platformz.get("services") or ():
        source = str(body.get("source") or "")
        if source.startswith("ServiceEntry "):
            continue
        hostname, namespace = str(body["hostname"]), str(body.get("namespace") or "")
        name = source.rsplit("/", 1)[-1] if "/" in source else hostname.split(".", 1)[0]
        ports = tuple(Port(str(p.get("name") or ""), int(p["port"]), str(p.get("protocol") or "TCP"),
                           str(p.get("appProtocol") or ""), str(p.get("targetPort") or ""))
                      for p in body.get("ports") or ())
        addresses = sorted({endpoint.rsplit(":", 1)[0] for listed in (body.get("endpoints") or {}).values()
                            for endpoint in listed})
        services.append(Service(name, namespace, hostname, ports, None, tuple(addresses),
                                external_name=bool(body.get("meshExternal"))))
    workloads = [Workload(str(w["name"]), str(w["namespace"]), labels_of(w.get("labels")),
                          str(w.get("serviceAccount") or "default"), str(w.get("address") or ""),
                          bool(w.get("sidecar", True)))
                 for w in platformz.get("workloads") or () if w.get("source") != "WorkloadEntry"]
    return Platform(tuple(services), tuple(workloads))


# -- from Kubernetes manifests ----------------------------------------------------------


def _target_port(port: Mapping[str, Any]) -> str:
    target = port.get("targetPort", port.get("port"))
    return "" if target is None else str(target)


def _service(body: Mapping[str, Any], namespace: str, name: str, domain: str) -> Service:
    spec = body.get("spec") or {}
    ports = tuple(Port(str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
                       str(p.get("appProtocol") or ""), _target_port(p))
                  for p in spec.get("ports") or () if isinstance(p, Mapping))
    selector = labels_of(spec.get("selector")) if spec.get("selector") else None
    return Service(name, namespace, f"{name}.{namespace}.svc.{domain}", ports, selector,
                   external_name=spec.get("type") == "ExternalName")


def _workload(kind: str, body: Mapping[str, Any], namespace: str, name: str) -> Workload | None:
    if kind == "Pod":
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    elif kind == "CronJob":
        template = (((body.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    elif kind in _POD_TEMPLATES:
        template = (body.get("spec") or {}).get("template") or {}
        meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    else:
        return None
    annotations = meta.get("annotations") or {}
    injected = str(annotations.get("sidecar.istio.io/inject", "true")).lower() != "false"
    return Workload(name, namespace, labels_of(meta.get("labels")),
                    str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"),
                    sidecar=injected)


def from_kubernetes(documents: Iterable[tuple[str, Mapping[str, Any]]], *, default_namespace: str = "default",
                    domain: str = DEFAULT_DOMAIN) -> Platform:
    """Services, workloads (pods and pod templates), Namespaces and ServiceAccounts among
    `(origin, document)` pairs; documents of other kinds are ignored."""
    services: list[Service] = []
    workloads: list[Workload] = []
    namespaces: set[str] = set()
    accounts: set[tuple[str, str]] = set()
    origins: dict[tuple[str, str, str], str] = {}
    for origin, body in documents:
        kind = str(body.get("kind") or "")
        meta = body.get("metadata") or {}
        name = str(meta.get("name") or "")
        namespace = str(meta.get("namespace") or default_namespace)
        if not name:
            continue
        if kind == "Namespace":
            namespaces.add(name)
            continue
        origins[(kind, namespace, name)] = origin
        if kind == "Service":
            services.append(_service(body, namespace, name, domain))
        elif kind == "ServiceAccount":
            accounts.add((namespace, name))
        elif (workload := _workload(kind, body, namespace, name)) is not None:
            workloads.append(workload)
    return Platform(tuple(services), tuple(workloads), frozenset(namespaces), frozenset(accounts), origins)

