"""Services, their ports and endpoints: what every registry produces."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Protocol(enum.StrEnum):
    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-WEB"
    HTTPS = "HTTPS"
    TLS = "TLS"
    TCP = "TCP"
    MONGO = "MONGO"
    MYSQL = "MYSQL"
    REDIS = "REDIS"
    UDP = "UDP"
    UNSUPPORTED = "UNSUPPORTED"

    @property
    def is_http(self) -> bool:
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC, Protocol.GRPC_WEB)

    @property
    def is_http2(self) -> bool:
        return self in (Protocol.HTTP2, Protocol.GRPC, Protocol.GRPC_WEB)


_BY_NAME = {protocol.value: protocol for protocol in Protocol}


def detect_protocol(name: str, explicit: str = "") -> Protocol:
    """Istio's rule: an explicit protocol wins, else the port name or its `<protocol>-` prefix.

    Istio sniffs the protocol of unnamed ports; Mizzen treats them as TCP.
    """
    if explicit:
        return _BY_NAME.get(explicit.upper(), Protocol.UNSUPPORTED)
    upper = name.upper()
    if upper == "GRPC-WEB" or upper.startswith("GRPC-WEB-"):
        return Protocol.GRPC_WEB
    return _BY_NAME.get(upper, _BY_NAME.get(upper.split("-", 1)[0], Protocol.TCP))


class Resolution(enum.StrEnum):
    STATIC = "STATIC"
    DNS = "DNS"
    DNS_ROUND_ROBIN = "DNS_ROUND_ROBIN"
    NONE = "NONE"


@dataclass(frozen=True)
class ServicePort:
    name: str
    number: int
    protocol: Protocol
    target_port: int = 0
    # Kubernetes' `appProtocol` as written ("" when unset), for `mizzenctl analyze` (IST0118).
    app_protocol: str = ""


@dataclass(frozen=True)
class Service:
    hostname: str
    namespace: str
    ports: tuple[ServicePort, ...]
    resolution: Resolution = Resolution.STATIC
    addresses: tuple[str, ...] = ()
    mesh_external: bool = False
    export_to: tuple[str, ...] = ()
    # Which resource or registry defined it, for debug output.
    source: str = ""

    def port(self, number: int) -> ServicePort | None:
        for port in self.ports:
            if port.number == number:
                return port
        return None


@dataclass(frozen=True)
class Endpoint:
    """One address serving one port of a service."""

    address: str
    port: int
    labels: tuple[tuple[str, str], ...] = ()
    locality: str = ""
    weight: int = 1
    healthy: bool = True
    service_account: str = ""
    network: str = ""
    # "istio" when a sidecar fronts the endpoint (mTLS capable), "" otherwise.
    tls_mode: str = ""
    workload: str = field(default="", compare=False)

    def matches(self, selector: dict[str, str]) -> bool:
        labels = dict(self.labels)
        return all(labels.get(key) == value for key, value in selector.items())
