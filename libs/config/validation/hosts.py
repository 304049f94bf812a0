"""Host names, wildcards, IP addresses and CIDR blocks, with Istio's rules.

Istio's DNS labels are RFC 1123 labels of either case (`labels.IsDNS1123Label`); a
wildcard may only be the first label (`*`, `*.example.com`, and the fused forms `*foo`
and `*-foo`); the top-level label of an FQDN cannot be all digits, which is what keeps an
IP address from passing as a host name.
"""

from __future__ import annotations

import ipaddress
import re

from libs.config.validation._checker import Checker

_LABEL = "[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
DNS_LABEL = re.compile(f"^{_LABEL}$")
_WILDCARD_LABEL = re.compile(rf"^(?:\*|(?:\*|\*-)?{_LABEL})$")
_PREFIX_LENGTH = re.compile(r"^\d{1,3}$")
UNIX_PREFIX = "unix://"


def is_dns_label(value: str) -> bool:
    return len(value) <= 63 and DNS_LABEL.match(value) is not None


def _labels_problem(domain: str, host: str) -> str | None:
    parts = domain.split(".")
    if parts[-1].isdigit():
        return f"domain name {host!r} is invalid (top-level domain {parts[-1]!r} cannot be all-numeric)"
    for i, label in enumerate(parts):
        # A trailing dot ("istio.io.") makes an unambiguous absolute name.
        if i == len(parts) - 1 and label == "":
            return None
        if not is_dns_label(label):
            return f"domain name {host!r} is invalid (label {label!r} is not a DNS-1123 label)"
    return None


def _length_problem(host: str) -> str | None:
    if not host:
        return "empty domain name not allowed"
    if len(host) > 255:
        return f"domain name {host[:40]!r}... is too long (max 255)"
    return None


def fqdn_problem(host: str) -> str | None:
    """Why `host` is not a DNS name (short names are DNS names), or None."""
    return _length_problem(host) or _labels_problem(host, host)


def wildcard_domain_problem(host: str) -> str | None:
    """Why `host` is not a DNS name with an optional wildcard first label, or None."""
    problem = _length_problem(host)
    if problem:
        return problem
    first, dot, rest = host.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.match(first):
        why = "a wildcard may only start the first label" if "*" in first[1:] else "is not a DNS-1123 label"
        return f"domain name {host!r} is invalid (label {first!r} {why})"
    return _labels_problem(rest, host) if dot else None


def is_partial_wildcard(host: str) -> bool:
    """`*foo.com`: Istio accepts it in some places and warns or rejects in others."""
    return "*" in host and host != "*" and not host.startswith("*.")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ip_or_cidr_problem(value: str) -> str | None:
    """Istio's ValidateIPSubnet: an address, or a CIDR block whose prefix length is a number."""
    if value.count("/") == 1:
        address, _, length = value.partition("/")
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not a valid CIDR block"
        if not _PREFIX_LENGTH.match(length) or not is_ip(address):
            return f"{value!r} is not a valid CIDR block"
        return None
    return None if is_ip(value) else f"{value!r} is not a valid IP address"


def unix_address_problem(address: str) -> str | None:
    """The path of a `unix://` address: absolute and not a directory, or `@abstract`."""
    if not address:
        return "unix address must not be empty"
    if address.startswith("@"):
        return None
    if not address.startswith("/") or address.endswith("/"):
        return f"{address!r} is not an absolute path to a file"
    return None


def check_fqdn(check: Checker, path: str, host: str) -> None:
    problem = fqdn_problem(host)
    if problem:
        check.error(path, problem)


def check_wildcard_domain(check: Checker, path: str, host: str) -> None:
    problem = wildcard_domain_problem(host)
    if problem:
        check.error(path, problem)


def namespaced_host(check: Checker, path: str, value: str, *, gateway: bool) -> None:
    """Gateway server and Sidecar egress hosts: `namespace/dnsName` (Gateways also take a bare
    dnsName or an IP).  The dnsName must be an FQDN or `*`, with no partial wildcard."""
    namespace, slash, host = value.partition("/")
    if not slash:
        if not gateway:
            check.error(path, f"host {value!r} must be of the form namespace/dnsName")
            return
        namespace, host = "*", value
    if not namespace or not host:
        check.error(path, f"host {value!r}: namespace and dnsName cannot be empty")
        return
    # Sidecars may also name `~` (no namespace); Gateways only `*`, `.` or a namespace.
    special = ("*", ".", "~") if not gateway else ("*", ".")
    if namespace not in special and not is_dns_label(namespace):
        check.error(path, f"host {value!r}: invalid namespace {namespace!r}")
    if host != "*" and "." not in host:
        check.error(path, f"host {value!r}: short names (non FQDN) are not allowed here")
    problem = wildcard_domain_problem(host)
    if problem and not (gateway and is_ip(host)):
        check.error(path, problem)
    if is_partial_wildcard(host):
        check.error(path, f"host {value!r}: partial wildcard {host!r} not allowed")


def gateway_names(check: Checker, path: str, names: list[str]) -> None:
    """VirtualService gateway references: `mesh`, `name`, `namespace/name` or legacy `name.namespace`."""
    for i, name in enumerate(names):
        where = f"{path}[{i}]"
        namespace, slash, gateway = name.partition("/")
        if not slash:
            if "." in name:
                gateway, _, namespace = name.partition(".")
                check.warn(where, f"legacy gateway name format {name!r}; prefer namespace/name: "
                                  f"{namespace.split('.')[0]}/{gateway}")
            check_fqdn(check, where, name)
            continue
        if not namespace or not gateway:
            check.error(where, f"gateway {name!r}: namespace and gateway name cannot be empty")
            continue
        if not is_dns_label(namespace):
            check.error(where, f"gateway {name!r}: invalid namespace {namespace!r}")
        if not is_dns_label(gateway):
            check.error(where, f"gateway {name!r}: invalid gateway name {gateway!r}")


def host_matches(a: str, b: str) -> bool:
    """Whether two hosts overlap (Istio's host.Name.Matches): equal, or one wildcard covers the other."""
    if a == b:
        return True
    if a.startswith("*"):
        if b.startswith("*"):
            return b[1:].endswith(a[1:]) or a[1:].endswith(b[1:])
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return False


def host_subset_of(host: str, of: str) -> bool:
    """Whether every name `host` matches is also matched by `of` (host.Name.SubsetOf)."""
    if of.startswith("*"):
        if host.startswith("*"):
            return host[1:].endswith(of[1:])
        return host.endswith(of[1:])
    return not host.startswith("*") and host == of
