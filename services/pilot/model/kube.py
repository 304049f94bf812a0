"""Kubernetes objects as pilot's model: Services, EndpointSlices, Pods and Nodes in, the
services, endpoints and workloads of the Kubernetes registry out (istio
`pilot/pkg/serviceregistry/kube`).  Pure: the registry's controller keeps the objects.

- A Service is `<name>.<namespace>.svc.<domain>`; its ports' protocol comes from
  `appProtocol`, then the port name or its `<protocol>-` prefix (as for ServiceEntries),
  and an unnamed port is TCP.  `clusterIP: None` makes it headless (no VIP, each pod's
  address an endpoint); `type: ExternalName` a DNS service resolving `externalName`.
  Headless services are served by EDS over their ready pods, as Istio does with
  PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES=true; Istio's default (an ORIGINAL_DST cluster that
  keeps a connection on the very pod the client addressed) is not built, so a request to
  one pod's address may be balanced to another pod of the same service.
- An EndpointSlice (label `kubernetes.io/service-name`) gives the Service's endpoints: the
  slice's port numbers by port name (a `targetPort` by name resolves per pod this way);
  `ready` endpoints are healthy, `serving` ones that are terminating stay as unhealthy so
  Envoy drains them, the rest are left out.  The endpoint's pod gives labels, service
  account (its SPIFFE identity) and whether a sidecar fronts it; its node's labels (or the
  slice's zone) the locality `region/zone/subzone`.
- A Pod with an IP is a workload: ServiceEntry selectors pick pods too, and telemetry and
  policy name the workload at an address.
- Namespaces give their labels, which the mesh config's discoverySelectors choose by
  (registry.discovered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.pilot.model.registry import KUBERNETES, RegistryContents
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.model.services import Endpoint, Protocol, Resolution, Service, ServicePort, detect_protocol

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"
SIDECAR_STATUS = "sidecar.istio.io/status"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
# appProtocol values Kubernetes defines beyond Istio's protocol names.
_APP_PROTOCOLS = {"kubernetes.io/h2c": Protocol.HTTP2, "kubernetes.io/ws": Protocol.HTTP,
                  "kubernetes.io/wss": Protocol.HTTPS}

Object = Mapping[str, Any]


def _meta(obj: Object) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: Object) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def port_protocol(port: Object) -> Protocol:
    """Istio's rule for a Service port: `appProtocol`, else the name (or its prefix)."""
    app = str(port.get("appProtocol") or "")
    if app:
        return _APP_PROTOCOLS.get(app.lower(), detect_protocol("", app))
    if port.get("protocol", "TCP") == "UDP":
        return Protocol.UDP
    return detect_protocol(str(port.get("name") or ""))


def service_of(obj: Object, domain_suffix: str) -> Service:
    namespace, name = _key(obj)
    spec = obj.get("spec") or {}
    ports = tuple(ServicePort(name=str(p.get("name") or ""), number=int(p["port"]), protocol=port_protocol(p),
                              target_port=p["targetPort"] if isinstance(p.get("targetPort"), int) else 0,
                              app_protocol=str(p.get("appProtocol") or ""))
                  for p in spec.get("ports") or () if p.get("port"))
    external = spec.get("type") == "ExternalName"
    cluster_ip = spec.get("clusterIP") or ""
    addresses = tuple(ip for ip in (spec.get("clusterIPs") or [cluster_ip]) if ip and ip != "None")
    return Service(hostname=f"{name}.{namespace}.svc.{domain_suffix}", namespace=namespace, ports=ports,
                   resolution=Resolution.DNS if external else Resolution.STATIC,
                   addresses=() if external else addresses, mesh_external=external,
                   source=f"Kubernetes Service {namespace}/{name}")


def locality(node: Object | None, zone: str = "") -> str:
    labels = _meta(node).get("labels") or {} if node is not None else {}
    parts = [labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "") or zone, labels.get(SUBZONE_LABEL, "")]
    while parts and not parts[-1]:
        parts.pop()
    return "/".join(parts)


def _sidecar(pod: Object) -> bool:
    meta = _meta(pod)
    return bool((meta.get("annotations") or {}).get(SIDECAR_STATUS)) or \
        (meta.get("labels") or {}).get(TLS_MODE_LABEL) == "istio"


def workload_of(pod: Object, node: Object | None) -> WorkloadInstance | None:
    """A running pod with an IP, as a workload (its name the pod's)."""
    status = pod.get("status") or {}
    address = status.get("podIP") or ""
    if not address or status.get("phase") in ("Succeeded", "Failed"):
        return None
    namespace, name = _key(pod)
    spec = pod.get("spec") or {}
    ports = tuple(sorted((str(port["name"]), int(port["containerPort"])) for container in spec.get("containers") or ()
                         for port in container.get("ports") or () if port.get("name") and port.get("containerPort")))
    return WorkloadInstance(name=name, namespace=namespace, address=address,
                            labels=tuple(sorted((_meta(pod).get("labels") or {}).items())), ports=ports,
                            service_account=spec.get("serviceAccountName") or "default",
                            locality=locality(node), sidecar=_sidecar(pod))


@dataclass
class KubeObjects:
    """The objects the registry's informers hold, by (namespace, name)."""

    services: dict[tuple[str, str], Object] = field(default_factory=dict)
    slices: dict[tuple[str, str], Object] = field(default_factory=dict)
    pods: dict[tuple[str, str], Object] = field(default_factory=dict)
    nodes: dict[str, Object] = field(default_factory=dict)
    namespaces: dict[str, Object] = field(default_factory=dict)


def _slice_endpoints(slice_: Object, service: Service, pods: Mapping[tuple[str, str], Object],
                     nodes: Mapping[str, Object]) -> dict[int, list[Endpoint]]:
    """Endpoints of one slice, by service port number."""
    numbers = {str(p.get("name") or ""): int(p["port"]) for p in slice_.get("ports") or () if p.get("port")}
    found: dict[int, list[Endpoint]] = {}
    for entry in slice_.get("endpoints") or ():
        conditions = entry.get("conditions") or {}
        ready = conditions.get("ready", True) is not False
        draining = not ready and conditions.get("serving") is True and conditions.get("terminating") is True
        if not ready and not draining:
            continue
        ref = entry.get("targetRef") or {}
        pod = pods.get((ref.get("namespace") or service.namespace, ref.get("name") or "")) \
            if ref.get("kind", "Pod") == "Pod" else None
        node = nodes.get(entry.get("nodeName") or ((pod or {}).get("spec") or {}).get("nodeName") or "")
        pod_meta = _meta(pod) if pod is not None else {}
        for port in service.ports:
            target = numbers.get(port.name)
            if target is None:
                continue
            for address in entry.get("addresses") or ():
                found.setdefault(port.number, []).append(Endpoint(
                    address=address, port=target, labels=tuple(sorted((pod_meta.get("labels") or {}).items())),
                    locality=locality(node, str(entry.get("zone") or "")), healthy=ready,
                    service_account=((pod or {}).get("spec") or {}).get("serviceAccountName") or "",
                    tls_mode="istio" if pod is not None and _sidecar(pod) else "",
                    workload=str(pod_meta.get("name") or "")))
    return found


def contents(objects: KubeObjects, domain_suffix: str, version: str = "") -> RegistryContents:
    services: dict[str, Service] = {}
    by_key: dict[tuple[str, str], Service] = {}
    endpoints: dict[tuple[str, int], list[Endpoint]] = {}
    for key, obj in sorted(objects.services.items()):
        service = service_of(obj, domain_suffix)
        services[service.hostname] = service
        by_key[key] = service
        external = str((obj.get("spec") or {}).get("externalName") or "")
        if service.resolution == Resolution.DNS and external:
            # ExternalName: Envoy resolves the name it points at, as a DNS cluster.
            for port in service.ports:
                endpoints[(service.hostname, port.number)] = [Endpoint(address=external, port=port.number)]
    for (namespace, _), slice_ in sorted(objects.slices.items()):
        owner = by_key.get((namespace, (_meta(slice_).get("labels") or {}).get(SERVICE_NAME_LABEL) or ""))
        if owner is None or owner.resolution == Resolution.DNS:
            continue
        for number, found in _slice_endpoints(slice_, owner, objects.pods, objects.nodes).items():
            endpoints.setdefault((owner.hostname, number), []).extend(found)
    workloads = [w for key, pod in sorted(objects.pods.items())
                 if (w := workload_of(pod, objects.nodes.get(((pod.get("spec") or {}).get("nodeName")) or "")))]
    return RegistryContents(KUBERNETES, services,
                            {key: tuple(sorted(found, key=lambda e: (e.address, e.port)))
                             for key, found in endpoints.items()},
                            tuple(workloads), version,
                            namespaces={name: dict(_meta(obj).get("labels") or {})
                                        for name, obj in objects.namespaces.items()})

