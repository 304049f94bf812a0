"""EDS: a ClusterLoadAssignment per cluster, endpoints grouped by locality."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.core.v3 import address_pb2, base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import wrappers_pb2

from services.pilot.model.services import Endpoint


def _locality(text: str) -> base_pb2.Locality:
    region, zone, subzone = ([*text.split("/"), "", ""])[:3] if text else ("", "", "")
    return base_pb2.Locality(region=region, zone=zone, sub_zone=subzone)


def socket_address(address: str, port: int) -> address_pb2.Address:
    if address.startswith("unix://"):
        return address_pb2.Address(pipe=address_pb2.Pipe(path=address[len("unix://"):]))
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=address, port_value=port))


def lb_endpoint(endpoint: Endpoint) -> endpoint_components_pb2.LbEndpoint:
    result = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=socket_address(endpoint.address, endpoint.port)),
        health_status=health_check_pb2.HEALTHY if endpoint.healthy else health_check_pb2.UNHEALTHY,
        load_balancing_weight=wrappers_pb2.UInt32Value(value=max(endpoint.weight, 1)),
    )
    if endpoint.tls_mode == "istio":
        # Auto-mTLS: the cluster's transport socket matches pick TLS for sidecar endpoints.
        result.metadata.filter_metadata["envoy.transport_socket_match"].update({"tlsMode": "istio"})
    return result


def load_assignment(
    cluster: str, endpoints: Iterable[Endpoint], selector: dict[str, str] | None = None
) -> endpoint_pb2.ClusterLoadAssignment:
    by_locality: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        if selector and not endpoint.matches(selector):
            continue
        by_locality.setdefault(endpoint.locality, []).append(endpoint)
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    for locality in sorted(by_locality):
        group = by_locality[locality]
        assignment.endpoints.append(endpoint_components_pb2.LocalityLbEndpoints(
            locality=_locality(locality),
            lb_endpoints=[lb_endpoint(e) for e in sorted(group, key=lambda e: (e.address, e.port))],
            load_balancing_weight=wrappers_pb2.UInt32Value(value=sum(max(e.weight, 1) for e in group)),
        ))
    return assignment
