"""Envoy resource helpers shared by pilot, the agent and tests: type URLs and packing."""

from libs.envoy._types import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
    SECRET_TYPE,
    TYPE_NAMES,
    duration,
    pack,
    short_type,
)

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "PUSH_ORDER",
    "ROUTE_TYPE",
    "SECRET_TYPE",
    "TYPE_NAMES",
    "duration",
    "pack",
    "short_type",
]
