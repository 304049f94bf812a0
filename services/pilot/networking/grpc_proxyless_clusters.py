"""Proxyless gRPC's clusters and endpoints: what gRPC C-core accepts (Istio's grpcgen cds.go).

EDS clusters `outbound|<port>|<subset>|<host>` over ADS with ROUND_ROBIN or RING_HASH (C-core
NACKs every other lb_policy), max_requests circuit breaking (gRFC A32), and IP endpoints only
(C-core NACKs an endpoint address it cannot parse as IP).  A DNS service named by hostnames is
a LOGICAL_DNS cluster, which gRPC resolves itself (gRFC A37).  No TLS: proxyless mTLS needs
gRPC certificate providers, which Mizzen's bootstrap does not configure.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf.message import Message

from services.pilot.model.push_context import PushContext
from services.pilot.model.services import Endpoint, Resolution, Service, ServicePort
from services.pilot.networking import names
from services.pilot.networking.cluster_policy import merged_policy
from services.pilot.networking.endpoints import lb_endpoint, load_assignment
from services.pilot.networking.memo import TranslationMemo

Part = dict[str, Message]


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _load_balancing(cluster: cluster_pb2.Cluster, policy: dict[str, Any], warnings: list[str]) -> None:
    """gRPC C-core knows ROUND_ROBIN and RING_HASH and NACKs any other lb_policy."""
    balancer = policy.get("loadBalancer", {})
    consistent = balancer.get("consistentHash")
    if consistent:
        cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
        size = (consistent.get("ringHash") or {}).get("minimumRingSize") or consistent.get("minimumRingSize")
        if size:
            cluster.ring_hash_lb_config.minimum_ring_size.value = size
        if "maglev" in consistent:
            warnings.append(f"{cluster.name}: gRPC has no maglev; ring hash is used")
        if "httpHeaderName" not in consistent:
            # gRPC ignores cookie, source IP and query parameter hash policies: random hashes.
            warnings.append(f"{cluster.name}: gRPC hashes on headers only; calls are spread at random")
        return
    simple = balancer.get("simple", "UNSPECIFIED")
    if simple not in ("UNSPECIFIED", "ROUND_ROBIN"):
        warnings.append(f"{cluster.name}: loadBalancer {simple} is not supported by gRPC; round robin is used")
    cluster.lb_policy = cluster_pb2.Cluster.ROUND_ROBIN


def _apply_policy(cluster: cluster_pb2.Cluster, policy: dict[str, Any], warnings: list[str]) -> None:
    _load_balancing(cluster, policy, warnings)
    max_requests = policy.get("connectionPool", {}).get("http", {}).get("http2MaxRequests")
    if max_requests:
        # gRFC A32: gRPC's circuit breaking honours max_requests only.
        cluster.circuit_breakers.thresholds.append(circuit_breaker_pb2.CircuitBreakers.Thresholds(
            priority=base_pb2.RoutingPriority.DEFAULT, max_requests={"value": max_requests}))
    mode = (policy.get("tls") or {}).get("mode", "DISABLE")
    if mode != "DISABLE":
        warnings.append(f"{cluster.name}: tls mode {mode} is not applied to proxyless gRPC; it connects in plain text")


def _logical_dns(cluster: cluster_pb2.Cluster, service: Service, port: ServicePort,
                 endpoints: list[Endpoint], warnings: list[str]) -> None:
    """A DNS service named by hostnames: gRPC resolves one name itself (gRFC A37)."""
    cluster.type = cluster_pb2.Cluster.LOGICAL_DNS
    target = endpoints[0] if endpoints else Endpoint(address=service.hostname,
                                                     port=port.target_port or port.number)
    if len(endpoints) > 1:
        warnings.append(f"{cluster.name}: gRPC resolves one DNS name per cluster; only {target.address} is used")
    cluster.load_assignment.cluster_name = cluster.name
    cluster.load_assignment.endpoints.add().lb_endpoints.append(lb_endpoint(target))


def build_cluster(push: PushContext, service: Service, port: ServicePort, subset: dict[str, Any] | None,
                  warnings: list[str]) -> tuple[cluster_pb2.Cluster, endpoint_pb2.ClusterLoadAssignment | None]:
    """A cluster as gRPC accepts it (Istio's grpcgen edsCluster), and its load assignment."""
    name = names.outbound_cluster(port.number, subset["name"] if subset else "", service.hostname)
    labels = subset.get("labels", {}) if subset else {}
    endpoints = [e for e in push.endpoints.get((service.hostname, port.number), ()) if e.matches(labels)]
    cluster = cluster_pb2.Cluster(name=name)
    rule = push.destination_rule(service.hostname)
    _apply_policy(cluster, merged_policy(rule.spec if rule else None, subset.get("trafficPolicy") if subset else None,
                                         port.number), warnings)
    by_name = [e for e in endpoints if not _is_ip(e.address)]
    if service.resolution in (Resolution.DNS, Resolution.DNS_ROUND_ROBIN) and (by_name or not endpoints):
        _logical_dns(cluster, service, port, by_name or endpoints, warnings)
        return cluster, None
    if by_name:
        warnings.append(f"{name}: endpoints {', '.join(sorted(e.address for e in by_name))} are not IP addresses; "
                        "proxyless gRPC is not sent them")
    cluster.type = cluster_pb2.Cluster.EDS
    cluster.eds_cluster_config.service_name = name
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    cluster.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3
    return cluster, load_assignment(name, [e for e in endpoints if _is_ip(e.address)])


def _cluster_key(push: PushContext, service: Service, port: ServicePort,
                 subset: dict[str, Any] | None) -> tuple[Any, ...]:
    rule = push.destination_rule(service.hostname)
    return ("grpc-cluster", service, port, json.dumps(subset, sort_keys=True) if subset else "",
            rule.to_json() if rule else b"", push.endpoints.get((service.hostname, port.number), ()))


def clusters(push: PushContext, services: list[Service], memo: TranslationMemo) -> tuple[Part, Part, tuple[str, ...]]:
    """(clusters, load assignments, warnings) for every port and subset of `services`, each
    reused across pushes while its inputs stay the same."""
    out_clusters: Part = {}
    out_endpoints: Part = {}
    warnings: list[str] = []
    for service in services:
        rule = push.destination_rule(service.hostname)
        subsets: list[dict[str, Any] | None] = [None, *(rule.spec.get("subsets", []) if rule else [])]
        for port in service.ports:
            for subset in subsets:
                def build(service: Service = service, port: ServicePort = port, subset: dict[str, Any] | None = subset,
                          ) -> tuple[cluster_pb2.Cluster, endpoint_pb2.ClusterLoadAssignment | None, tuple[str, ...]]:
                    own: list[str] = []
                    cluster, assignment = build_cluster(push, service, port, subset, own)
                    return cluster, assignment, tuple(own)

                cluster, assignment, own = memo.lasting(_cluster_key(push, service, port, subset), build)
                out_clusters[cluster.name] = cluster
                if assignment is not None:
                    out_endpoints[cluster.name] = assignment
                warnings.extend(own)
    return out_clusters, out_endpoints, tuple(warnings)
