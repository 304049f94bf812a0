"""A gateway listener from the filter chains its servers produce: SNI, destination-subnet and
ALPN matches, TLS termination, and the conflict check that keeps Envoy from refusing it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import wrappers_pb2

from libs.envoy import TLS_INSPECTOR, TLS_SOCKET, duration, pack

# Istio bounds the TLS handshake on gateway chains (slow-handshake resistance).
TRANSPORT_SOCKET_CONNECT_TIMEOUT_S = 15.0


@dataclass
class Chain:
    """One filter chain of a gateway listener, before it becomes a proto."""

    # Who asked for it, for warnings: `Gateway ns/gw spec.servers[0]`, `VirtualService ns/vs spec.tls[1]`.
    owner: str
    filters: list[listener_components_pb2.Filter]
    # Empty, or containing `*`: any SNI (and connections without one).
    server_names: tuple[str, ...] = ()
    # Destination CIDRs (VirtualService `destinationSubnets`).
    prefix_ranges: tuple[str, ...] = ()
    application_protocols: tuple[str, ...] = ()
    tls: tls_pb2.DownstreamTlsContext | None = None
    # Clusters its network filters forward to (tcp_proxy), for make-before-break.
    clusters: set[str] = field(default_factory=set)
    # The route configuration its HTTP connection manager subscribes to.
    rds: str = ""

    @property
    def sni_match(self) -> tuple[str, ...]:
        return () if "*" in self.server_names else tuple(sorted(set(self.server_names)))

    def match_keys(self) -> set[tuple[str, str, str]]:
        """Every (destination prefix, SNI, ALPN) combination the chain claims: Envoy refuses a
        listener in which two chains claim the same one."""
        prefixes = sorted({_cidr(p) for p in self.prefix_ranges}) or [""]
        snis = list(self.sni_match) or [""]
        alpns = sorted(set(self.application_protocols)) or [""]
        return {(p, s, a) for p in prefixes for s in snis for a in alpns}


def _cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def valid_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _cidr_range(text: str) -> address_pb2.CidrRange:
    network = ipaddress.ip_network(text, strict=False)
    return address_pb2.CidrRange(address_prefix=str(network.network_address),
                                 prefix_len=wrappers_pb2.UInt32Value(value=network.prefixlen))


def _filter_chain(chain: Chain) -> listener_components_pb2.FilterChain:
    built = listener_components_pb2.FilterChain(filters=chain.filters)
    match = built.filter_chain_match
    match.server_names.extend(chain.sni_match)
    match.prefix_ranges.extend(_cidr_range(p) for p in sorted({_cidr(p) for p in chain.prefix_ranges}))
    match.application_protocols.extend(sorted(set(chain.application_protocols)))
    if not (match.server_names or match.prefix_ranges or match.application_protocols):
        built.ClearField("filter_chain_match")
    if chain.tls is not None:
        built.transport_socket.name = TLS_SOCKET
        built.transport_socket.typed_config.CopyFrom(pack(chain.tls))
        built.transport_socket_connect_timeout.CopyFrom(duration(TRANSPORT_SOCKET_CONNECT_TIMEOUT_S))
    return built


def assemble(name: str, address: address_pb2.Address, chains: list[Chain],
             warnings: list[str]) -> tuple[listener_pb2.Listener | None, list[Chain]]:
    """The listener and the chains it kept; None when no chain is left (Envoy refuses a
    listener without filter chains, and Istio omits it)."""
    claimed: dict[tuple[str, str, str], Chain] = {}
    kept: list[Chain] = []
    for chain in chains:
        keys = chain.match_keys()
        clash = next((claimed[k] for k in sorted(keys) if k in claimed), None)
        if clash is not None:
            warnings.append(f"{chain.owner}: its filter chain on listener {name} matches the same connections "
                            f"as {clash.owner}'s; skipped")
            continue
        claimed.update(dict.fromkeys(keys, chain))
        kept.append(chain)
    if not kept:
        return None, []
    listener = listener_pb2.Listener(name=name, address=address, traffic_direction=base_pb2.OUTBOUND)
    if any(c.server_names or c.application_protocols or c.tls is not None for c in kept):
        listener.listener_filters.add(name=TLS_INSPECTOR).typed_config.CopyFrom(
            pack(tls_inspector_pb2.TlsInspector()))
    listener.filter_chains.extend(_filter_chain(c) for c in kept)
    return listener, kept
