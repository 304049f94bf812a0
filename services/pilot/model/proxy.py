"""A connected Envoy, as its node id and metadata describe it (Istio's conventions)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from services.pilot.errors import InvalidNode


class NodeType(enum.StrEnum):
    SIDECAR = "sidecar"
    ROUTER = "router"


@dataclass(frozen=True)
class Proxy:
    """`sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` plus Istio's metadata keys."""

    id: str
    type: NodeType
    ip: str
    pod: str
    namespace: str
    dns_domain: str
    labels: tuple[tuple[str, str], ...] = ()
    service_account: str = ""
    workload_name: str = ""
    # Where this proxy's listeners bind: 0.0.0.0 normally; the workload's own loopback
    # address in the local mesh, where every workload shares one network namespace.
    bind_address: str = "0.0.0.0"
    # REDIRECT (iptables capture), NONE (apps use the sidecar as an HTTP proxy).
    interception: str = "REDIRECT"
    # The agent serves this proxy a workload certificate over SDS (mTLS possible).
    identity: bool = False
    # A gRPC library's xDS client rather than Envoy (Istio's proxyless gRPC): it gets API
    # listeners and only the resources it names.
    proxyless: bool = False
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def class_key(self) -> tuple[Any, ...]:
        """Everything translation reads about a proxy: proxies with equal keys get equal config."""
        return (self.type, self.namespace, self.labels, self.ip, self.bind_address, self.interception,
                self.service_account, self.identity, self.metadata.get("APP_PORTS", ""), self.proxyless)

    def matches(self, selector: dict[str, str]) -> bool:
        labels = self.label_map
        return all(labels.get(key) == value for key, value in selector.items())


def is_proxyless(node: base_pb2.Node, metadata: dict[str, Any]) -> bool:
    """Istio's bootstrap for gRPC says `GENERATOR: grpc`; a bootstrap that does not is still
    recognised by the user agent every gRPC xDS client sends ("gRPC C-core ...", "gRPC Go",
    "gRPC Java")."""
    return str(metadata.get("GENERATOR", "")).lower() == "grpc" or node.user_agent_name.startswith("gRPC")


def parse_node(node: base_pb2.Node) -> Proxy:
    parts = node.id.split("~")
    if len(parts) != 4:
        raise InvalidNode(f"node id {node.id!r} is not <type>~<ip>~<pod>.<namespace>~<domain>")
    type_name, ip, pod_ns, domain = parts
    try:
        node_type = NodeType(type_name)
    except ValueError as exc:
        raise InvalidNode(f"node id {node.id!r}: type {type_name!r} is not sidecar or router") from exc
    pod, _, namespace = pod_ns.rpartition(".")
    if not pod or not namespace:
        raise InvalidNode(f"node id {node.id!r}: {pod_ns!r} is not <pod>.<namespace>")
    metadata = json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
    labels = metadata.get("LABELS") or {}
    if not isinstance(labels, dict):
        raise InvalidNode(f"node {node.id!r}: metadata LABELS must be a map")
    return Proxy(
        id=node.id,
        type=node_type,
        ip=ip,
        pod=pod,
        namespace=namespace,
        dns_domain=domain,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        service_account=str(metadata.get("SERVICE_ACCOUNT", "")),
        workload_name=str(metadata.get("WORKLOAD_NAME", pod)),
        bind_address=str(metadata.get("MIZZEN_BIND_ADDRESS", "0.0.0.0")),
        interception=str(metadata.get("INTERCEPTION_MODE", "REDIRECT")),
        identity=str(metadata.get("MIZZEN_IDENTITY", "")).lower() == "true",
        proxyless=is_proxyless(node, metadata),
        metadata=metadata,
    )
