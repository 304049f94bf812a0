"""CDS: one outbound cluster per service port, plus one per DestinationRule subset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from libs.envoy import HTTP_OPTIONS, duration, pack
from services.pilot.model.push_context import PushContext
from services.pilot.model.services import Endpoint, Resolution, Service, ServicePort
from services.pilot.networking import names
from services.pilot.networking.cluster_policy import apply_traffic_policy, merged_policy
from services.pilot.networking.endpoints import lb_endpoint, load_assignment


@dataclass(frozen=True)
class OutboundCluster:
    """A cluster and, for EDS clusters, the load assignment EDS serves for it."""

    cluster: cluster_pb2.Cluster
    assignment: endpoint_pb2.ClusterLoadAssignment | None


def _ads_eds(cluster: cluster_pb2.Cluster) -> None:
    cluster.type = cluster_pb2.Cluster.EDS
    cluster.eds_cluster_config.service_name = cluster.name
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    cluster.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3


def use_http2(cluster: cluster_pb2.Cluster) -> None:
    options = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions(),
        )
    )
    cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(pack(options))


def _dns_endpoints(service: Service, port: ServicePort, endpoints: tuple[Endpoint, ...]) -> list[Endpoint]:
    if endpoints:
        return list(endpoints)
    # DNS without endpoints: Envoy resolves the host itself.
    return [Endpoint(address=service.hostname, port=port.target_port or port.number)]


def build_cluster(
    push: PushContext,
    service: Service,
    port: ServicePort,
    subset: str = "",
    subset_labels: dict[str, str] | None = None,
    subset_policy: dict[str, Any] | None = None,
) -> OutboundCluster:
    name = names.outbound_cluster(port.number, subset, service.hostname)
    cluster = cluster_pb2.Cluster(name=name, connect_timeout=duration(push.mesh.connect_timeout_s))
    endpoints = push.endpoints.get((service.hostname, port.number), ())
    assignment = None
    if service.resolution in (Resolution.DNS, Resolution.DNS_ROUND_ROBIN):
        cluster.type = (cluster_pb2.Cluster.STRICT_DNS if service.resolution == Resolution.DNS
                        else cluster_pb2.Cluster.LOGICAL_DNS)
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
        selected = _dns_endpoints(service, port, endpoints)
        if subset_labels:
            selected = [e for e in selected if e.matches(subset_labels)]
        cluster.load_assignment.cluster_name = name
        if selected:
            group = cluster.load_assignment.endpoints.add()
            group.lb_endpoints.extend(lb_endpoint(e) for e in selected)
    elif service.resolution == Resolution.NONE and not endpoints:
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    else:
        _ads_eds(cluster)
        assignment = load_assignment(name, endpoints, subset_labels)
    if port.protocol.is_http2:
        use_http2(cluster)
    rule = push.destination_rule(service.hostname)
    policy = merged_policy(rule.spec if rule else None, subset_policy, port.number)
    apply_traffic_policy(cluster, policy)
    return OutboundCluster(cluster, assignment)


def outbound_clusters(push: PushContext, services: list[Service]) -> list[OutboundCluster]:
    built: list[OutboundCluster] = []
    for service in services:
        rule = push.destination_rule(service.hostname)
        subsets = rule.spec.get("subsets", []) if rule else []
        for port in service.ports:
            built.append(build_cluster(push, service, port))
            for subset in subsets:
                built.append(build_cluster(
                    push, service, port, subset["name"], subset.get("labels", {}), subset.get("trafficPolicy"),
                ))
    return built


def passthrough_cluster(push: PushContext) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=names.PASSTHROUGH_CLUSTER,
        type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED,
        connect_timeout=duration(push.mesh.connect_timeout_s),
    )


def blackhole_cluster(push: PushContext) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=names.BLACKHOLE_CLUSTER,
        type=cluster_pb2.Cluster.STATIC,
        connect_timeout=duration(push.mesh.connect_timeout_s),
    )
