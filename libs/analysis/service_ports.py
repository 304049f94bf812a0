"""Kubernetes Service ports named so Istio can tell their protocol (IST0118): `<protocol>`
or `<protocol>-<suffix>`, or an `appProtocol` (istio/istio `analyzers/service/portname.go`).
Mizzen treats a port it cannot name as TCP, so HTTP features (routes, retries, per-request
metrics and policy) silently do not apply to it.  Kubernetes' own namespaces and the mesh's
root namespace are left out, as Istio leaves its control plane out."""

from __future__ import annotations

from collections.abc import Iterator

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog
from libs.analysis._messages import Message, PortNameIsNotUnderNamingConvention
from libs.analysis._platform import Port

# Istio's protocol names (pkg/config/protocol), as port names or their prefix.
PROTOCOLS = frozenset({"http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "udp", "mongo", "mysql", "redis",
                       "http_proxy", "h2c"})
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})
# What a registry reports for ports whose transport is not TCP: Istio names those by it.
_NOT_TCP = frozenset({"UDP", "SCTP"})


def follows_convention(port: Port) -> bool:
    if port.app_protocol or port.protocol.upper() in _NOT_TCP:
        return True
    name = port.name.lower()
    return name in PROTOCOLS or name.startswith("grpc-web-") or name.split("-", 1)[0] in PROTOCOLS


def _port_names(catalog: Catalog) -> Iterator[Message]:
    for service in catalog.platform.services:
        if service.namespace in SYSTEM_NAMESPACES or service.namespace == catalog.root_namespace \
                or service.external_name:
            continue
        for port in service.ports:
            if not follows_convention(port):
                yield Message(PortNameIsNotUnderNamingConvention, catalog.service_ref(service),
                              (port.name, port.number, port.target_port or str(port.number)))


PORT_NAMES = Analyzer("service.PortNameAnalyzer", "Checks the port names associated with each service", _port_names,
                      ("MeshConfig",), needs_platform=True)
