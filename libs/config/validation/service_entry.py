"""ServiceEntry rules (istio/istio pkg/config/validation ValidateServiceEntry)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, ports, scope
from libs.config.validation._checker import Checker
from libs.config.validation.workload import workload_entry


def _hosts(check: Checker, spec: dict[str, Any]) -> None:
    if not spec.get("hosts"):
        check.error("spec.hosts", "a service entry needs at least one host")
    for i, host in enumerate(spec.get("hosts", [])):
        path = f"spec.hosts[{i}]"
        if host == "*":
            check.error(path, "'*' is not allowed as a ServiceEntry host")
            continue
        problem = hosts.wildcard_domain_problem(host)
        if problem:
            check.error(path, problem + (" (put IP addresses in spec.addresses)" if hosts.is_ip(host) else ""))
        elif hosts.is_partial_wildcard(host):
            check.warn(path, f"partial wildcard {host!r}: only '*.' prefixes match as wildcards")


def _ports(check: Checker, spec: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    numbers: set[int] = set()
    for i, port in enumerate(spec.get("ports", [])):
        path = f"spec.ports[{i}]"
        name, number = port.get("name", ""), port.get("number", 0)
        if name in names:
            check.error(f"{path}.name", f"port name {name!r} is already defined")
        if number in numbers:
            check.error(f"{path}.number", f"port {number} is already defined")
        names.add(name)
        numbers.add(number)
        ports.port_name(check, f"{path}.name", name)
        ports.protocol(check, f"{path}.protocol", port.get("protocol", ""))
        ports.port_number(check, f"{path}.number", number)
        if port.get("targetPort"):
            ports.port_number(check, f"{path}.targetPort", port["targetPort"])
            if spec.get("resolution", "NONE") == "NONE":
                check.warn(f"{path}.targetPort", "targetPort has no effect with resolution NONE")
    return names


def _resolution(check: Checker, spec: dict[str, Any], port_names: set[str]) -> None:
    resolution = spec.get("resolution", "NONE")
    endpoints = spec.get("endpoints", [])
    if resolution == "NONE":
        if endpoints:
            check.error("spec.endpoints", "no endpoints may be given with resolution NONE")
        if "workloadSelector" in spec:
            check.warn("spec.workloadSelector", "workloadSelector has no effect with resolution NONE")
    elif resolution == "STATIC":
        if not endpoints and "workloadSelector" not in spec:
            # Istio accepts it; the service then simply has no endpoints.
            check.warn("spec.endpoints", "resolution STATIC without endpoints or a workloadSelector: "
                                         "the service has no endpoints")
        for i, endpoint in enumerate(endpoints):
            workload_entry(check, f"spec.endpoints[{i}]", endpoint, service_ports=port_names, allow_fqdn=False)
    elif resolution in ("DNS", "DNS_ROUND_ROBIN"):
        if not endpoints:
            # The hosts themselves are what gets resolved.
            for i, host in enumerate(spec.get("hosts", [])):
                if host != "*" and hosts.fqdn_problem(host):
                    check.error(f"spec.hosts[{i}]", f"with resolution {resolution} and no endpoints, hosts must be "
                                                    f"resolvable DNS names, not {host!r}")
        if resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1:
            check.error("spec.endpoints", "resolution DNS_ROUND_ROBIN allows at most one endpoint")
        for i, endpoint in enumerate(endpoints):
            workload_entry(check, f"spec.endpoints[{i}]", endpoint, service_ports=port_names, allow_fqdn=True)
        if "workloadSelector" in spec:
            check.warn("spec.workloadSelector", f"workloadSelector has no effect with resolution {resolution}")


def validate(spec: dict[str, Any], check: Checker) -> None:
    if "workloadSelector" in spec:
        scope.networking_selector(check, "spec.workloadSelector", spec["workloadSelector"])
        if "endpoints" in spec:
            check.error("spec", "only one of workloadSelector or endpoints may be set")
    _hosts(check, spec)
    addresses = spec.get("addresses", [])
    for i, address in enumerate(addresses):
        problem = hosts.ip_or_cidr_problem(address)
        if problem:
            check.error(f"spec.addresses[{i}]", problem)
    resolution = spec.get("resolution", "NONE")
    if resolution not in ("NONE", "STATIC") and any("/" in address for address in addresses):
        check.error("spec.addresses", "CIDR addresses are allowed only with resolution NONE or STATIC")
    port_names = _ports(check, spec)
    _resolution(check, spec, port_names)
    if resolution != "NONE" and len(spec.get("hosts", [])) > 1:
        # Only HTTP's Host header or TLS's SNI tells several hosts apart on one port.
        for i, port in enumerate(spec.get("ports", [])):
            protocol = port.get("protocol", "").upper()
            if protocol not in ports.HTTP_PROTOCOLS and protocol not in ports.TLS_PROTOCOLS:
                check.error(f"spec.ports[{i}].protocol", "several hosts cannot share a non-HTTP, non-TLS port "
                                                         f"unless resolution is NONE (protocol {protocol or 'unset'})")
                break
    scope.export_to(check, "spec.exportTo", spec.get("exportTo", []), allow_none=True)
