"""xDS type URLs, the push order, and small constructors used everywhere."""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# Make before break: clusters exist before endpoints fill them, listeners and routes
# come after the clusters they name.
PUSH_ORDER = (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)

TYPE_NAMES = {
    CLUSTER_TYPE: "CDS",
    ENDPOINT_TYPE: "EDS",
    LISTENER_TYPE: "LDS",
    ROUTE_TYPE: "RDS",
    SECRET_TYPE: "SDS",
}


def short_type(type_url: str) -> str:
    return TYPE_NAMES.get(type_url, type_url.rsplit("/", 1)[-1])


# The prefix `Any.Pack` (and so `pack`) gives every type URL.
TYPE_URL_PREFIX = "type.googleapis.com/"


def pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def type_url_of(message: Message) -> str:
    """The type URL `pack` gives `message`."""
    return f"{TYPE_URL_PREFIX}{message.DESCRIPTOR.full_name}"


def duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))
