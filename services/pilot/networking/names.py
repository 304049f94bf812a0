"""Istio's resource names, which tools and dashboards rely on."""

from __future__ import annotations

BLACKHOLE_CLUSTER = "BlackHoleCluster"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"
VIRTUAL_OUTBOUND_LISTENER = "virtualOutbound"
VIRTUAL_INBOUND_LISTENER = "virtualInbound"


def outbound_cluster(port: int, subset: str, host: str) -> str:
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def parse_outbound_cluster(name: str) -> tuple[int, str, str] | None:
    """(port, subset, host) of an `outbound|…` cluster name, else None."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound":
        return None
    return int(parts[1]), parts[2], parts[3]


def listener_name(address: str, port: int) -> str:
    return f"{address}_{port}"


def gateway_route_name(port: int) -> str:
    return f"http.{port}"
