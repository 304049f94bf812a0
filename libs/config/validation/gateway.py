"""Gateway rules (istio/istio pkg/config/validation ValidateGateway)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import common
from libs.config.validation._checker import Checker


def _tls(check: Checker, path: str, protocol: str, tls: dict[str, Any] | None) -> None:
    if protocol in ("HTTPS", "TLS") and tls is None:
        check.error(path, f"a {protocol} server needs tls settings")
        return
    if tls is None:
        return
    mode = tls.get("mode", "PASSTHROUGH")
    if tls.get("httpsRedirect") and protocol == "HTTP":
        return
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        has_credential = bool(tls.get("credentialName") or tls.get("credentialNames"))
        has_files = bool(tls.get("serverCertificate") or tls.get("privateKey"))
        has_list = bool(tls.get("tlsCertificates"))
        if not (has_credential or has_files or has_list):
            check.error(path, f"mode {mode} needs credentialName, or serverCertificate and privateKey")
        if has_files and not (tls.get("serverCertificate") and tls.get("privateKey")):
            check.error(path, "serverCertificate and privateKey must be set together")
        if mode in ("MUTUAL", "OPTIONAL_MUTUAL") and has_files and not tls.get("caCertificates"):
            check.error(f"{path}.caCertificates", f"mode {mode} with certificate files needs caCertificates")


def validate(spec: dict[str, Any], check: Checker) -> None:
    servers = spec.get("servers", [])
    if not servers:
        check.error("spec.servers", "at least one server is required")
    common.labels(check, "spec.selector", spec.get("selector", {}))
    names: set[str] = set()
    for i, server in enumerate(servers):
        path = f"spec.servers[{i}]"
        port = server.get("port")
        if port is None:
            check.error(f"{path}.port", "a server needs a port")
            port = {}
        common.port_number(check, f"{path}.port.number", port.get("number", 0))
        protocol = port.get("protocol", "")
        if not protocol:
            check.error(f"{path}.port.protocol", "a protocol is required")
        else:
            common.protocol(check, f"{path}.port.protocol", protocol)
        if not port.get("name") and "port" in server:
            check.warn(f"{path}.port.name", "a port name is recommended")
        hosts = server.get("hosts", [])
        if not hosts:
            check.error(f"{path}.hosts", "at least one host is required")
        for j, host in enumerate(hosts):
            if "/" in host:
                common.namespaced_host(check, f"{path}.hosts[{j}]", host)
            else:
                common.wildcard_host(check, f"{path}.hosts[{j}]", host)
        _tls(check, f"{path}.tls", protocol.upper(), server.get("tls"))
        name = server.get("name")
        if name:
            if name in names:
                check.error(f"{path}.name", f"server name {name!r} is used twice")
            names.add(name)
