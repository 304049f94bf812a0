"""Gateway rules (istio/istio pkg/config/validation ValidateGateway)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, ports, tls
from libs.config.validation._checker import Checker


def _port(check: Checker, path: str, port: dict[str, Any], bind: str) -> None:
    protocol = port.get("protocol", "")
    ports.protocol(check, f"{path}.protocol", protocol, required=True)
    # A server bound to a unix socket has no port number.
    if port.get("number", 0) or not bind.startswith(hosts.UNIX_PREFIX):
        ports.port_number(check, f"{path}.number", port.get("number", 0))
    if port.get("targetPort"):
        check.error(f"{path}.targetPort", "targetPort has no effect on Gateways")
    if not port.get("name"):
        check.error(f"{path}.name", "a port name is required")


def _bind(check: Checker, path: str, bind: str, port: dict[str, Any]) -> None:
    if bind.startswith(hosts.UNIX_PREFIX):
        problem = hosts.unix_address_problem(bind.removeprefix(hosts.UNIX_PREFIX))
        if problem:
            check.error(path, problem)
        if port.get("number"):
            check.error(path, "the port number must be 0 for a unix domain socket")
    elif bind and not hosts.is_ip(bind):
        check.error(path, f"bind {bind!r} must be an IP address or unix:// path")


def _server_tls(check: Checker, path: str, server: dict[str, Any], protocol: str) -> None:
    settings = server.get("tls")
    if settings is not None:
        tls.server_tls(check, f"{path}.tls", settings)
    if protocol not in ports.PROTOCOLS:
        return
    if protocol in ports.TLS_PROTOCOLS and settings is None:
        check.error(f"{path}.tls", f"a {protocol} server needs tls settings")
    elif protocol not in ports.TLS_PROTOCOLS and settings is not None:
        if protocol not in ports.HTTP_PROTOCOLS:
            check.error(f"{path}.tls", f"a {protocol} server cannot have tls settings")
        elif (settings.get("mode", "PASSTHROUGH") not in ("PASSTHROUGH", "AUTO_PASSTHROUGH")
              or any(settings.get(f) for f in ("caCertificates", "privateKey", "serverCertificate"))):
            # Plain-text HTTP servers may only carry `httpsRedirect`.
            check.error(f"{path}.tls", "a plain-text HTTP server cannot have TLS settings other than httpsRedirect")
    if settings is not None and settings.get("httpsRedirect") and protocol not in ports.HTTP_PROTOCOLS:
        check.warn(f"{path}.tls.httpsRedirect", "httpsRedirect only applies to HTTP servers")


def validate(spec: dict[str, Any], check: Checker) -> None:
    # Gateways are referenced as namespace/name, so the name cannot contain dots.
    if check.name and not hosts.is_dns_label(check.name):
        check.error("metadata.name", f"invalid gateway name {check.name!r}: a DNS-1123 label (no dots) is required")
    servers = spec.get("servers", [])
    if not servers:
        check.error("spec.servers", "a gateway needs at least one server")
    port_names: dict[str, int] = {}
    server_names: dict[str, int] = {}
    for i, server in enumerate(servers):
        path = f"spec.servers[{i}]"
        if not server.get("hosts"):
            check.error(f"{path}.hosts", "a server needs at least one host")
        for j, host in enumerate(server.get("hosts", [])):
            hosts.namespaced_host(check, f"{path}.hosts[{j}]", host, gateway=True)
        port = server.get("port")
        bind = server.get("bind", "")
        if port is None:
            check.error(f"{path}.port", "a server needs a port")
            continue
        _port(check, f"{path}.port", port, bind)
        _bind(check, f"{path}.bind", bind, port)
        _server_tls(check, path, server, port.get("protocol", "").upper())
        name = port.get("name", "")
        if name in port_names:
            check.error(f"{path}.port.name", f"port names must be unique across servers: {name!r} is also used by "
                                             f"spec.servers[{port_names[name]}]")
        port_names.setdefault(name, i)
        server_name = server.get("name")
        if server_name:
            # The API requires it: the name prefixes the server's stats.
            if server_name in server_names:
                check.error(f"{path}.name", f"server name {server_name!r} is also used by "
                                            f"spec.servers[{server_names[server_name]}]")
            server_names.setdefault(server_name, i)
