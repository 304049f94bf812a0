"""Checks shared by many kinds: names, hosts, ports, labels, percentages."""

from __future__ import annotations

import ipaddress
import re

from libs.config.validation._checker import Checker

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Label values and the name part of keys: Kubernetes' qualified-name syntax.
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_HOST_LABEL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
HTTP_HEADER_NAME = re.compile(r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")

# Istio infers a port's protocol from these names (and prefixes `<protocol>-`).
PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "MYSQL", "REDIS", "TCP", "TLS", "UDP")


def dns1123_label(check: Checker, path: str, value: str) -> None:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        check.error(path, f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
                          "at most 63 characters, starting and ending alphanumeric)")


def dns1123_subdomain(check: Checker, path: str, value: str) -> None:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        check.error(path, f"{value!r} is not a DNS-1123 subdomain")


def label_key(check: Checker, path: str, key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        check.error(path, f"label key {key!r}: prefix {prefix!r} is not a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        check.error(path, f"label key {key!r} is not a valid label name (alphanumerics, '-', '_', '.', "
                          "at most 63 characters, starting and ending alphanumeric)")


def label_value(check: Checker, path: str, value: str) -> None:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.match(value)):
        check.error(path, f"label value {value!r} is not valid (alphanumerics, '-', '_', '.', at most "
                          "63 characters, starting and ending alphanumeric)")


def labels(check: Checker, path: str, values: dict[str, str], *, allow_wildcard: bool = False) -> None:
    for key, value in values.items():
        label_key(check, f"{path}[{key}]", key)
        if allow_wildcard and value == "*":
            continue
        label_value(check, f"{path}[{key}]", value)


def port_number(check: Checker, path: str, number: int, *, allow_zero: bool = False) -> None:
    if allow_zero and number == 0:
        return
    if not 1 <= number <= 65535:
        check.error(path, f"port number {number} must be in 1-65535")


def protocol(check: Checker, path: str, value: str) -> None:
    if value.upper() not in PROTOCOLS:
        check.error(path, f"unknown protocol {value!r} (one of {', '.join(PROTOCOLS)})")


def percentage(check: Checker, path: str, value: float) -> None:
    if not 0 <= value <= 100:
        check.error(path, f"percentage {value} must be in 0-100")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def fqdn(check: Checker, path: str, host: str) -> None:
    """A DNS name: labels of letters, digits and '-', at most 255 characters."""
    if not host or len(host) > 255:
        check.error(path, f"host {host!r} must be 1-255 characters")
        return
    for label in host.rstrip(".").split("."):
        if not label or len(label) > 63 or not _HOST_LABEL.match(label):
            check.error(path, f"host {host!r}: {label!r} is not a valid DNS label")
            return


def wildcard_host(check: Checker, path: str, host: str, *, allow_bare_wildcard: bool = True) -> None:
    """Istio's host rule: an FQDN or short name, optionally starting with `*` or `*.`."""
    if host == "*":
        if not allow_bare_wildcard:
            check.error(path, "'*' is not allowed here")
        return
    if host.startswith("*."):
        fqdn(check, path, host[2:])
    elif host.startswith("*"):
        # Istio accepts a leading "*" fused to a label ("*bar.com").
        fqdn(check, path, host[1:])
    elif "*" in host:
        check.error(path, f"host {host!r}: a wildcard is only allowed as the first label ('*.example.com')")
    else:
        fqdn(check, path, host)


def namespaced_host(check: Checker, path: str, value: str) -> None:
    """Gateway and Sidecar hosts: `namespace/dnsName`, with `*`, `.` and `~` namespaces."""
    if "/" not in value:
        check.error(path, f"host {value!r} must be of the form namespace/dnsName")
        return
    namespace, _, host = value.partition("/")
    if namespace not in ("*", ".", "~"):
        dns1123_label(check, path, namespace)
    wildcard_host(check, path, host)
