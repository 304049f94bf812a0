"""Port numbers, port names and port protocols."""

from __future__ import annotations

from libs.config.validation._checker import Checker
from libs.config.validation.hosts import is_dns_label

# Istio's protocol.Parse, which ignores case.  HTTP_PROXY is only meaningful on Sidecar
# egress listeners but parses everywhere.
PROTOCOLS = frozenset({
    "TCP", "UDP", "GRPC", "GRPC-WEB", "HTTP", "HTTP_PROXY", "HTTP2", "HTTPS", "TLS", "MONGO", "REDIS", "MYSQL",
})
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
# Protocols on plain TCP connections whose bytes carry no host name to route on.
OPAQUE_TCP_PROTOCOLS = frozenset({"TCP", "MONGO", "REDIS", "MYSQL"})


def port_number(check: Checker, path: str, number: int) -> None:
    if not 1 <= number <= 65535:
        check.error(path, f"port number {number} must be in the range 1-65535")


def port_name(check: Checker, path: str, name: str) -> None:
    if not is_dns_label(name):
        check.error(path, f"invalid port name {name!r} (a DNS-1123 label is required)")


def protocol(check: Checker, path: str, value: str, *, required: bool = False) -> None:
    """An empty protocol means "detect it" where Istio sniffs, and is an error where it does not."""
    if not value:
        if required:
            check.error(path, f"a protocol is required (one of {', '.join(sorted(PROTOCOLS))})")
        return
    if value.upper() not in PROTOCOLS:
        check.error(path, f"unsupported protocol {value!r} (one of {', '.join(sorted(PROTOCOLS))})")


def port_strings(check: Checker, path: str, values: list[str]) -> None:
    """AuthorizationPolicy ports and destination.port conditions: decimal strings, 0-65535."""
    for i, value in enumerate(values):
        if not value.isascii() or not value.isdigit() or int(value) > 65535:
            check.error(f"{path}[{i}]", f"bad port {value!r}: must be a number in 0-65535")
