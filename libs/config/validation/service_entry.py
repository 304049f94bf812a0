"""ServiceEntry rules (istio/istio pkg/config/validation ValidateServiceEntry)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import common
from libs.config.validation._checker import Checker


def validate(spec: dict[str, Any], check: Checker) -> None:
    hosts = spec.get("hosts", [])
    resolution = spec.get("resolution", "NONE")
    addresses = spec.get("addresses", [])
    if not hosts:
        check.error("spec.hosts", "at least one host is required")
    for i, host in enumerate(hosts):
        path = f"spec.hosts[{i}]"
        if host == "*":
            check.error(path, "'*' is not allowed in a ServiceEntry")
        elif common.is_ip(host):
            check.error(path, f"host {host!r} must be a DNS name; put IP addresses in spec.addresses")
        else:
            common.wildcard_host(check, path, host, allow_bare_wildcard=False)
            if resolution in ("DNS", "DNS_ROUND_ROBIN") and host.startswith("*"):
                check.error(path, f"wildcard host {host!r} cannot be resolved with resolution {resolution}")
    for i, address in enumerate(addresses):
        if not common.is_cidr(address):
            check.error(f"spec.addresses[{i}]", f"{address!r} is not an IP address or CIDR block")
    ports = spec.get("ports", [])
    port_names: set[str] = set()
    port_numbers: set[int] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        common.port_number(check, f"{path}.number", port.get("number", 0))
        if "targetPort" in port:
            common.port_number(check, f"{path}.targetPort", port["targetPort"])
        if "protocol" in port:
            common.protocol(check, f"{path}.protocol", port["protocol"])
        name = port.get("name", "")
        if name:
            if name in port_names:
                check.error(f"{path}.name", f"port name {name!r} is used twice")
            port_names.add(name)
        number = port.get("number", 0)
        if number in port_numbers:
            check.error(f"{path}.number", f"port {number} is listed twice")
        port_numbers.add(number)
    endpoints = spec.get("endpoints", [])
    if endpoints and "workloadSelector" in spec:
        check.error("spec.workloadSelector", "only one of endpoints and workloadSelector may be set")
    if "workloadSelector" in spec:
        common.labels(check, "spec.workloadSelector.labels", spec["workloadSelector"].get("labels", {}))
    if resolution == "NONE" and endpoints:
        check.error("spec.endpoints", "endpoints are not allowed with resolution NONE")
    if resolution == "STATIC" and not endpoints and "workloadSelector" not in spec:
        check.error("spec.endpoints", "resolution STATIC needs endpoints (or a workloadSelector)")
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not endpoints and addresses:
        # Istio: with DNS and no endpoints, the hosts themselves are resolved.
        pass
    if resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1:
        check.error("spec.endpoints", "resolution DNS_ROUND_ROBIN allows at most one endpoint")
    for i, endpoint in enumerate(endpoints):
        path = f"spec.endpoints[{i}]"
        address = endpoint.get("address", "")
        if not address:
            check.error(f"{path}.address", "an endpoint needs an address")
        elif address.startswith("unix://"):
            if resolution != "STATIC":
                check.error(f"{path}.address", "unix socket endpoints need resolution STATIC")
        elif resolution == "STATIC" and not common.is_ip(address):
            check.error(f"{path}.address", f"{address!r} must be an IP address with resolution STATIC")
        elif resolution in ("DNS", "DNS_ROUND_ROBIN") and not common.is_ip(address):
            common.fqdn(check, f"{path}.address", address)
        for port_name, number in endpoint.get("ports", {}).items():
            if port_names and port_name not in port_names:
                check.error(f"{path}.ports[{port_name}]", f"no port named {port_name!r} in spec.ports")
            common.port_number(check, f"{path}.ports[{port_name}]", number)
        common.labels(check, f"{path}.labels", endpoint.get("labels", {}))
        if "weight" in endpoint and endpoint["weight"] == 0:
            check.error(f"{path}.weight", "weight must be greater than 0 when set")
    if not ports and resolution != "NONE":
        check.warn("spec.ports", "no ports: the service has no listeners or clusters")
