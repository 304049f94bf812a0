"""WorkloadEntry and WorkloadGroup rules; WorkloadEntry's also apply to ServiceEntry endpoints."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, http, labels, ports
from libs.config.validation._checker import Checker


def workload_entry(check: Checker, path: str, entry: dict[str, Any], *, service_ports: set[str] | None,
                   allow_fqdn: bool) -> None:
    """Istio's validateWorkloadEntry.  `service_ports` are the port names of the enclosing
    ServiceEntry (None for a standalone WorkloadEntry, which cannot know them); `allow_fqdn`
    is False where only IP endpoints make sense (STATIC resolution)."""
    address = entry.get("address", "")
    if not address:
        if not entry.get("network"):
            check.error(f"{path}.address", "an address is required (it may be omitted only with a network, "
                                           "for workloads reached through that network's gateway)")
            return
        check.warn(f"{path}.address", f"no address: reached through the gateway of network {entry['network']!r}")
    unix = address.startswith(hosts.UNIX_PREFIX)
    if unix:
        problem = hosts.unix_address_problem(address.removeprefix(hosts.UNIX_PREFIX))
        if problem:
            check.error(f"{path}.address", problem)
        if entry.get("ports"):
            check.error(f"{path}.ports", f"unix endpoint {address} must not have ports")
    elif address and not hosts.is_ip(address):
        if not allow_fqdn:
            check.error(f"{path}.address", f"endpoint address {address!r} is not a valid IP address")
        elif hosts.fqdn_problem(address):
            check.error(f"{path}.address", f"endpoint address {address!r} is not a valid FQDN or IP address")
    endpoint_ports(check, path, entry.get("ports", {}), service_ports)
    labels.labels(check, f"{path}.labels", entry.get("labels", {}))
    if unix and service_ports is not None and len(service_ports) != 1:
        check.error(path, "a unix endpoint needs exactly one service port")


def endpoint_ports(check: Checker, path: str, values: dict[str, int], service_ports: set[str] | None) -> None:
    for name, number in values.items():
        where = f"{path}.ports[{name}]"
        if service_ports is not None and name not in service_ports:
            check.error(where, f"endpoint port {name!r} is not defined by the service entry's ports")
        ports.port_name(check, where, name)
        ports.port_number(check, where, number)


def validate_workload_entry(spec: dict[str, Any], check: Checker) -> None:
    workload_entry(check, "spec", spec, service_ports=None, allow_fqdn=True)


def _probe(check: Checker, path: str, probe: dict[str, Any]) -> None:
    for field in ("periodSeconds", "initialDelaySeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        if probe.get(field, 0) < 0:
            check.error(f"{path}.{field}", f"{field} must not be negative")
    if "httpGet" in probe:
        get = probe["httpGet"]
        ports.port_number(check, f"{path}.httpGet.port", get.get("port", 0))
        if get.get("scheme", "HTTP") not in ("HTTP", "HTTPS"):
            check.error(f"{path}.httpGet.scheme", 'httpGet.scheme must be "HTTP" or "HTTPS"')
        for i, header in enumerate(get.get("httpHeaders", [])):
            http.header_name(check, f"{path}.httpGet.httpHeaders[{i}].name", header.get("name", ""))
    elif "tcpSocket" in probe:
        ports.port_number(check, f"{path}.tcpSocket.port", probe["tcpSocket"].get("port", 0))
    elif "grpc" in probe:
        ports.port_number(check, f"{path}.grpc.port", probe["grpc"].get("port", 0))
    elif "exec" in probe:
        if not probe["exec"].get("command"):
            check.error(f"{path}.exec.command", "exec.command is required")
    else:
        check.error(path, "a probe needs one of httpGet, tcpSocket, grpc or exec")


def validate_workload_group(spec: dict[str, Any], check: Checker) -> None:
    # The template is not a full WorkloadEntry: address and the like are filled in per VM.
    if "template" not in spec:
        check.error("spec.template", "a template is required")
    else:
        template = spec["template"]
        labels.labels(check, "spec.template.labels", template.get("labels", {}))
        endpoint_ports(check, "spec.template", template.get("ports", {}), None)
    labels.labels(check, "spec.metadata.labels", spec.get("metadata", {}).get("labels", {}))
    if "probe" in spec:
        _probe(check, "spec.probe", spec["probe"])
