"""The comma-separated lists istio-iptables takes (and the traffic.sidecar.istio.io/*
annotations hold): ports and IPv4 ranges, "*" for all, "" for none.

Each parser raises ValueError with the reason, for the caller to name the flag or
annotation it came from.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from libs.capture.iptables import ALL


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def parse_ports(text: str) -> tuple[int, ...]:
    """"80,443" -> (80, 443); "" -> ()."""
    ports: list[int] = []
    for item in _items(text):
        port = parse_port(item)
        if port not in ports:
            ports.append(port)
    return tuple(ports)


def parse_ports_or_all(text: str) -> tuple[int, ...] | Literal["*"]:
    return ALL if text.strip() == ALL else parse_ports(text)


def parse_ip_ranges(text: str) -> tuple[str, ...]:
    """"10.0.0.0/8,192.168.1.1" -> ("10.0.0.0/8", "192.168.1.1/32"); host bits are dropped
    as iptables drops them."""
    ranges: list[str] = []
    for item in _items(text):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or CIDR range") from exc
        if network.version != 4:
            # istio-iptables sends IPv6 ranges to ip6tables; Mizzen's capture is IPv4 only.
            raise ValueError(f"{item!r} is an IPv6 range; Mizzen captures IPv4 traffic only")
        if str(network) not in ranges:
            ranges.append(str(network))
    return tuple(ranges)


def parse_ip_ranges_or_all(text: str) -> tuple[str, ...] | Literal["*"]:
    return ALL if text.strip() == ALL else parse_ip_ranges(text)


def format_list(value: tuple[int, ...] | tuple[str, ...] | Literal["*"]) -> str:
    """The flag value that parses back to `value`."""
    return ALL if value == ALL else ",".join(str(item) for item in value)
