"""Istio's resource names, which tools and dashboards rely on."""

from __future__ import annotations

BLACKHOLE_CLUSTER = "BlackHoleCluster"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"
VIRTUAL_OUTBOUND_LISTENER = "virtualOutbound"
VIRTUAL_INBOUND_LISTENER = "virtualInbound"
# The agent's SDS server (a static cluster in every bootstrap) and its secret names.
SDS_CLUSTER = "sds-grpc"
SDS_DEFAULT_SECRET = "default"
SDS_ROOT_SECRET = "ROOTCA"


def outbound_cluster(port: int, subset: str, host: str) -> str:
    return f"outbound|{port}|{subset}|{host}"


def outbound_sni(port: int, subset: str, host: str) -> str:
    """The DNS-safe form of an outbound cluster name that sidecars send as SNI
    (`outbound_.<port>_.<subset>_.<host>`), which AUTO_PASSTHROUGH gateways route by."""
    return f"outbound_.{port}_.{subset}_.{host}"


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


def gateway_route_name(port: int, bind: str = "") -> str:
    """RDS of a gateway's plain-text HTTP servers on one port (all of them share it)."""
    return f"http.{port}" + (f".{bind}" if bind else "")


def gateway_https_route_name(port: int, port_name: str, gateway: str, namespace: str, bind: str = "") -> str:
    """RDS of one TLS-terminating HTTPS server: `https.<port>.<port name>.<gateway>.<namespace>`."""
    return f"https.{port}.{port_name}.{gateway}.{namespace}" + (f".{bind}" if bind else "")
