"""Sidecar rules (istio/istio pkg/config/validation ValidateSidecar)."""

from __future__ import annotations

from typing import Any

from libs.config.validation import hosts, ports, scope, tls
from libs.config.validation._checker import Checker
from libs.config.validation.destinations import destination
from libs.config.validation.traffic_policy import connection_pool

# defaultEndpoint may only point at the workload itself.
_LOOPBACK_HOSTS = ("127.0.0.1", "0.0.0.0", "::1", "::", "")
_DEFAULT_ENDPOINT_FORMS = "127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///path"


def _port(check: Checker, path: str, port: dict[str, Any]) -> None:
    if port.get("name"):
        ports.port_name(check, f"{path}.name", port["name"])
    ports.protocol(check, f"{path}.protocol", port.get("protocol", ""))
    if port.get("targetPort"):
        check.error(f"{path}.targetPort", "targetPort has no effect on Sidecars")


def _bind(check: Checker, path: str, bind: str) -> None:
    if bind and not hosts.is_ip(bind):
        check.error(path, f"bind {bind!r} must be an IP address")


def _default_endpoint(check: Checker, path: str, endpoint: str) -> None:
    if endpoint.startswith(hosts.UNIX_PREFIX):
        problem = hosts.unix_address_problem(endpoint.removeprefix(hosts.UNIX_PREFIX))
        if problem:
            check.error(path, problem)
        return
    host, colon, port = endpoint.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or host not in _LOOPBACK_HOSTS:
        check.error(path, f"defaultEndpoint {endpoint!r} must be of the form {_DEFAULT_ENDPOINT_FORMS}")
    elif not port.isascii() or not port.isdigit():
        check.error(path, f"defaultEndpoint port {port!r} is not a number")
    else:
        ports.port_number(check, path, int(port))


def _ingress(check: Checker, path: str, listener: dict[str, Any], seen: set[int]) -> None:
    if "port" not in listener:
        check.error(f"{path}.port", "an ingress listener needs a port")
        return
    port = listener["port"]
    _port(check, f"{path}.port", port)
    ports.port_number(check, f"{path}.port.number", port.get("number", 0))
    _bind(check, f"{path}.bind", listener.get("bind", ""))
    if port.get("number", 0) in seen:
        check.error(f"{path}.port.number", f"port {port.get('number', 0)} is used by another ingress listener")
    seen.add(port.get("number", 0))
    if listener.get("defaultEndpoint"):
        _default_endpoint(check, f"{path}.defaultEndpoint", listener["defaultEndpoint"])
    settings = listener.get("tls")
    if settings is not None:
        where = f"{path}.tls"
        for field, reason in (("subjectAltNames", "subjectAltNames is not supported in sidecar ingress tls"),
                              ("httpsRedirect", "httpsRedirect is not supported in sidecar ingress tls"),
                              ("credentialName", "credentialName is not supported in sidecar ingress tls")):
            if settings.get(field):
                check.error(f"{where}.{field}", reason)
        if settings.get("mode") in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
            check.error(f"{where}.mode", f"mode {settings['mode']} cannot be used in sidecar ingress tls")
        tls.server_tls(check, where, settings)
    if "connectionPool" in listener:
        connection_pool(check, f"{path}.connectionPool", listener["connectionPool"])
        if "http" in listener["connectionPool"] and port.get("protocol", "").upper() not in ports.HTTP_PROTOCOLS:
            check.warn(f"{path}.connectionPool.http", "HTTP connection pool settings on a non-HTTP port: only the "
                                                      "TCP settings apply")


def _egress_port(check: Checker, path: str, listener: dict[str, Any], numbers: set[int], sockets: set[str]) -> None:
    port = listener["port"]
    _port(check, f"{path}.port", port)
    bind = listener.get("bind", "")
    number = port.get("number", 0)
    if number == 0:
        # Port 0 means a unix domain socket listener; the socket is the bind address.
        if not bind.startswith(hosts.UNIX_PREFIX):
            check.error(f"{path}.bind", "a listener on port 0 must bind a unix:// domain socket")
        else:
            problem = hosts.unix_address_problem(bind.removeprefix(hosts.UNIX_PREFIX))
            if problem:
                check.error(f"{path}.bind", problem)
        if listener.get("captureMode", "DEFAULT") not in ("DEFAULT", "NONE"):
            check.error(f"{path}.captureMode", "captureMode must be DEFAULT or NONE for unix domain socket listeners")
        if bind in sockets:
            check.error(f"{path}.bind", f"unix domain socket {bind!r} is used by another egress listener")
        sockets.add(bind)
        return
    ports.port_number(check, f"{path}.port.number", number)
    _bind(check, f"{path}.bind", bind)
    if number in numbers:
        check.error(f"{path}.port.number", f"port {number} is used by another egress listener")
    numbers.add(number)


def _egress_hosts(check: Checker, path: str, values: list[str]) -> None:
    if not values:
        check.error(path, "an egress listener needs at least one host")
    # namespace -> dnsNames seen, to warn on hosts that an earlier one already covers.
    seen: dict[str, set[str]] = {}
    for i, value in enumerate(values):
        hosts.namespaced_host(check, f"{path}[{i}]", value, gateway=False)
        namespace, slash, host = value.partition("/")
        if not slash:
            continue
        names = seen.setdefault(check.namespace if namespace == "." else namespace, set())
        if host in names or "*" in names or (host == "*" and names):
            check.warn(f"{path}[{i}]", f"duplicated egress host {value!r}")
        names.add(host)
    if "*" in seen.get("*", set()) and len(seen) > 1:
        check.warn(path, "`*/*` selects every host; the other hosts add nothing")


def validate(spec: dict[str, Any], check: Checker) -> None:
    if "workloadSelector" in spec:
        scope.networking_selector(check, "spec.workloadSelector", spec["workloadSelector"])
    if not (spec.get("egress") or spec.get("ingress") or "outboundTrafficPolicy" in spec
            or "inboundConnectionPool" in spec):
        check.error("spec", "empty Sidecar: set egress, ingress, outboundTrafficPolicy or inboundConnectionPool")
    seen: set[int] = set()
    for i, listener in enumerate(spec.get("ingress", [])):
        _ingress(check, f"spec.ingress[{i}]", listener, seen)
    if "inboundConnectionPool" in spec:
        connection_pool(check, "spec.inboundConnectionPool", spec["inboundConnectionPool"])
    egress = spec.get("egress", [])
    numbers: set[int] = set()
    sockets: set[str] = set()
    for i, listener in enumerate(egress):
        path = f"spec.egress[{i}]"
        if "port" not in listener:
            # The catch-all listener: one only, and last, or later listeners are unreachable.
            if i != len(egress) - 1:
                check.error(path, "only the last egress listener may omit the port (the catch-all listener)")
        else:
            _egress_port(check, path, listener, numbers, sockets)
        _egress_hosts(check, f"{path}.hosts", listener.get("hosts", []))
    policy = spec.get("outboundTrafficPolicy", {})
    if "egressProxy" in policy:
        if policy.get("mode", "REGISTRY_ONLY") != "ALLOW_ANY":
            check.error("spec.outboundTrafficPolicy.egressProxy", "egressProxy can only be set with mode ALLOW_ANY")
        else:
            proxy = policy["egressProxy"]
            hosts.check_fqdn(check, "spec.outboundTrafficPolicy.egressProxy.host", proxy.get("host", ""))
            if "port" not in proxy:
                check.error("spec.outboundTrafficPolicy.egressProxy.port", "egressProxy needs a port")
            destination(check, "spec.outboundTrafficPolicy.egressProxy", proxy)
