"""The Gateway servers that select one router proxy, merged per listener as Istio's
`mergeGateways` does: which servers share a port, which one wins a conflict, and the
RDS name each HTTP(S) server serves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from libs.config import Resource
from services.pilot.networking import names

HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
# Istio forwards these as opaque TCP at a gateway (no protocol-specific filters).
TCP_PROTOCOLS = frozenset({"TCP", "MONGO", "REDIS", "MYSQL"})
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
PASSTHROUGH_MODES = frozenset({"PASSTHROUGH", "AUTO_PASSTHROUGH"})


@dataclass(frozen=True, eq=False)
class Server:
    """One `spec.servers[i]` of a Gateway; compared by identity, like Istio's *Server keys."""

    gateway: Resource
    index: int
    number: int
    protocol: str
    port_name: str
    # `./h` resolved to `<gateway namespace>/h`, `*/h` to `h` (Istio's sanitizeServerHostNamespace).
    hosts: tuple[str, ...]
    bind: str = ""
    name: str = ""
    tls: dict[str, Any] | None = None

    @property
    def gateway_ref(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"

    @property
    def ref(self) -> str:
        return f"{self.gateway.ref} spec.servers[{self.index}]"

    @property
    def tls_mode(self) -> str:
        # PASSTHROUGH is the API's zero value.
        return str(self.tls.get("mode", "PASSTHROUGH")) if self.tls is not None else ""

    @property
    def https_redirect(self) -> bool:
        return bool(self.tls and self.tls.get("httpsRedirect"))

    @property
    def is_http(self) -> bool:
        """Plain-text HTTP (any TLS block only carries httpsRedirect)."""
        return self.protocol in HTTP_PROTOCOLS

    @property
    def is_passthrough(self) -> bool:
        return self.tls is not None and self.tls_mode in PASSTHROUGH_MODES

    @property
    def terminates_https(self) -> bool:
        """An HTTPS server whose TLS Envoy terminates before an HTTP connection manager."""
        return self.protocol == "HTTPS" and self.tls is not None and not self.is_passthrough

    @property
    def sni_hosts(self) -> tuple[str, ...]:
        """Server hosts without their namespace part, sorted and deduplicated."""
        return tuple(sorted({host.rpartition("/")[2] for host in self.hosts}))


def _sanitize_hosts(hosts: Iterable[str], namespace: str) -> tuple[str, ...]:
    out: list[str] = []
    for host in hosts:
        scope, slash, dns = host.rpartition("/")
        if not slash:
            out.append(host)
        elif scope == ".":
            out.append(f"{namespace}/{dns}")
        elif scope == "*":
            if dns == "*":
                return ("*",)
            out.append(dns)
        else:
            out.append(host)
    return tuple(out)


def parse_servers(gateway: Resource) -> list[Server]:
    servers = []
    for i, server in enumerate(gateway.spec.get("servers", [])):
        port = server.get("port") or {}
        servers.append(Server(
            gateway=gateway, index=i, number=int(port.get("number", 0)),
            protocol=str(port.get("protocol", "")).upper(), port_name=str(port.get("name", "")),
            hosts=_sanitize_hosts(server.get("hosts", []), gateway.namespace),
            bind=str(server.get("bind", "")), name=str(server.get("name", "")), tls=server.get("tls"),
        ))
    return servers


@dataclass
class PortServers:
    """The servers one listener serves: plain text (HTTP, or one TCP server) or TLS (told
    apart by SNI)."""

    number: int
    bind: str
    plaintext: bool
    servers: list[Server] = field(default_factory=list)


@dataclass
class MergedGateway:
    ports: list[PortServers] = field(default_factory=list)
    # RDS name of every HTTP server (shared `http.<port>`) and terminating HTTPS server.
    route_names: dict[Server, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def servers_for_route(self, route_name: str) -> list[Server]:
        return [s for s, name in self.route_names.items() if name == route_name]


def route_name(server: Server) -> str:
    """Istio's gatewayRDSRouteName; empty for servers without RDS (TCP, TLS, passthrough)."""
    if server.is_http:
        return names.gateway_route_name(server.number, server.bind)
    if server.terminates_https:
        return names.gateway_https_route_name(server.number, server.port_name, server.gateway.name,
                                              server.gateway.namespace, server.bind)
    return ""


def _unusable(server: Server) -> str:
    """Why this server can become no filter chain, or ''."""
    if server.number <= 0:
        return "it has no port number"
    if server.protocol in HTTP_PROTOCOLS or server.protocol in TCP_PROTOCOLS:
        return ""
    if server.protocol in TLS_PROTOCOLS:
        return "" if server.tls is not None else f"a {server.protocol} server needs tls settings"
    return f"protocol {server.protocol or '(none)'} is not served at gateways"


def merge(gateways: list[Resource]) -> MergedGateway:
    """Istio's rules: plain-text HTTP servers on one port merge into one `http.<port>` route;
    TLS servers (HTTPS, TLS) on one port share the listener, each matched by SNI; anything
    else on a port already taken is dropped with a warning naming both servers (the first,
    in namespace/name order, wins)."""
    merged = MergedGateway()
    by_key: dict[tuple[int, str], PortServers] = {}
    tls_hosts: dict[tuple[int, str], dict[str, Server]] = {}
    for gateway in gateways:
        for server in parse_servers(gateway):
            reason = _unusable(server)
            if reason:
                merged.warnings.append(f"{server.ref}: {reason}; skipped")
                continue
            key = (server.number, server.bind)
            group = by_key.get(key)
            if group is not None and not _joins(group, server, merged):
                continue
            name = route_name(server)
            if server.terminates_https and name in merged.route_names.values():
                merged.warnings.append(f"{server.ref}: route name {name} is not unique; skipped")
                continue
            if not server.is_http and server.tls is not None:
                # Envoy refuses two filter chains with the same SNI match.
                known = tls_hosts.setdefault(key, {})
                taken = [h for h in server.hosts if h in known]
                if taken:
                    merged.warnings.append(
                        f"{server.ref}: host(s) {', '.join(taken)} on port {server.number} are already served "
                        f"by {known[taken[0]].ref}; skipped")
                    continue
                known.update((h, server) for h in server.hosts)
            if group is None:
                group = PortServers(server.number, server.bind, plaintext=server.is_http or server.tls is None)
                by_key[key] = group
                merged.ports.append(group)
            group.servers.append(server)
            if name:
                merged.route_names[server] = name
    merged.ports.sort(key=lambda g: (g.number, g.bind))
    return merged


def _joins(group: PortServers, server: Server, merged: MergedGateway) -> bool:
    first = group.servers[0]
    if group.plaintext:
        fits = first.is_http and server.is_http
    else:
        fits = not server.is_http and server.tls is not None
    if not fits:
        merged.warnings.append(
            f"{server.ref}: port {server.number} ({server.protocol}) conflicts with {first.ref} "
            f"({first.protocol}), which serves it; skipped")
    return fits
