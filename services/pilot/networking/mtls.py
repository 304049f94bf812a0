"""Mutual TLS between sidecars: PeerAuthentication on the server side, ISTIO_MUTUAL and
auto-mTLS on the client side, with SPIFFE identities checked on both.

Certificates never pass through pilot: both sides name the agent's SDS secrets
`default` (the workload's certificate and key) and `ROOTCA` (the trust bundle).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2

from libs.config import Resource
from libs.envoy import TLS_SOCKET, pack
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import names
from services.pilot.networking.cluster_policy import merged_policy
from services.pilot.networking.gateway_tls import sds_secret_config

# Envoy's transport-socket-match metadata key, and Istio's label for sidecar endpoints.
SOCKET_MATCH = "envoy.transport_socket_match"
ISTIO_TLS_MODE = {"tlsMode": "istio"}
# What Istio's sidecars offer: lets a PERMISSIVE server tell mesh mTLS from other TLS.
ISTIO_ALPN = ("istio-peer-exchange", "istio")

MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")


def _selects(policy: Resource, proxy: Proxy) -> bool:
    labels = policy.spec.get("selector", {}).get("matchLabels")
    return bool(labels) and proxy.matches(labels)


def peer_authentication_mode(proxy: Proxy, push: PushContext, port: int) -> str:
    """Istio's precedence: workload (selector, with port-level overrides), then namespace,
    then mesh-wide (root namespace); UNSET defers to the next level; default PERMISSIVE."""
    policies = push.config.of_kind("PeerAuthentication")
    workload = [p for p in policies if p.namespace == proxy.namespace and _selects(p, proxy)]
    namespace = [p for p in policies if p.namespace == proxy.namespace and not p.spec.get("selector")]
    mesh = [p for p in policies if p.namespace == push.mesh.root_namespace and not p.spec.get("selector")]
    for level in (workload, namespace, mesh):
        if not level:
            continue
        policy = level[0]
        if level is workload:
            port_level = policy.spec.get("portLevelMtls", {}).get(str(port), {}).get("mode", "UNSET")
            if port_level != "UNSET":
                return str(port_level)
        mode = policy.spec.get("mtls", {}).get("mode", "UNSET")
        if mode != "UNSET":
            return str(mode)
    return "PERMISSIVE"


def spiffe_prefix(push: PushContext) -> str:
    return f"spiffe://{push.mesh.trust_domain}/"


def inbound_tls_context(push: PushContext, *, http: bool) -> tls_pb2.DownstreamTlsContext:
    """Server side: present the workload's certificate, require the peer's, and accept any
    identity of this trust domain; which identities may do what is AuthorizationPolicy's
    to say, in the RBAC filters behind this handshake (`authz`), where the peer's SPIFFE id
    is the `principals` a policy matches."""
    context = tls_pb2.DownstreamTlsContext()
    context.require_client_certificate.value = True
    common = context.common_tls_context
    common.alpn_protocols.extend(["h2", "http/1.1"] if http else [])
    common.tls_certificate_sds_secret_configs.append(sds_secret_config(names.SDS_DEFAULT_SECRET, wait_forever=True))
    combined = common.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.append(common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.URI, matcher=string_pb2.StringMatcher(prefix=spiffe_prefix(push))))
    combined.validation_context_sds_secret_config.CopyFrom(sds_secret_config(names.SDS_ROOT_SECRET, wait_forever=True))
    return context


def upstream_tls_context(push: PushContext, sni: str, identities: list[str]) -> tls_pb2.UpstreamTlsContext:
    """Client side: present our certificate, verify the server's SPIFFE id (one of the
    service's accounts, or any of the trust domain when none is known)."""
    context = tls_pb2.UpstreamTlsContext(sni=sni)
    common = context.common_tls_context
    common.alpn_protocols.extend(ISTIO_ALPN)
    common.tls_certificate_sds_secret_configs.append(sds_secret_config(names.SDS_DEFAULT_SECRET, wait_forever=True))
    validation = common.combined_validation_context.default_validation_context
    if identities:
        validation.match_typed_subject_alt_names.extend(
            common_pb2.SubjectAltNameMatcher(san_type=common_pb2.SubjectAltNameMatcher.URI,
                                             matcher=string_pb2.StringMatcher(exact=identity))
            for identity in identities)
    else:
        validation.match_typed_subject_alt_names.append(common_pb2.SubjectAltNameMatcher(
            san_type=common_pb2.SubjectAltNameMatcher.URI,
            matcher=string_pb2.StringMatcher(prefix=spiffe_prefix(push))))
    common.combined_validation_context.validation_context_sds_secret_config.CopyFrom(
        sds_secret_config(names.SDS_ROOT_SECRET, wait_forever=True))
    return context


def transport_socket(context: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=pack(context))


def identity_of(push: PushContext, namespace: str, service_account: str) -> str:
    return f"{spiffe_prefix(push)}ns/{namespace}/sa/{service_account}"


def istio_endpoint_metadata() -> base_pb2.Metadata:
    """Marks a sidecar endpoint, so auto-mTLS picks the TLS transport socket for it."""
    value = struct_pb2.Struct()
    value.update(ISTIO_TLS_MODE)
    return base_pb2.Metadata(filter_metadata={SOCKET_MATCH: value})


def secure_cluster(cluster: cluster_pb2.Cluster, push: PushContext) -> None:
    """Client-side mTLS for an `outbound|…` cluster of a proxy that holds a certificate:
    DestinationRule `tls.mode: ISTIO_MUTUAL` always, `DISABLE` never, and otherwise
    auto-mTLS: TLS to endpoints marked as sidecars, plaintext to the rest."""
    parsed = names.parse_outbound_cluster(cluster.name)
    if parsed is None or cluster.HasField("transport_socket"):
        return
    port, subset, host = parsed
    service = push.services.get(host)
    if service is None:
        return
    rule = push.destination_rule(host)
    subset_policy = None
    if rule is not None:
        subset_policy = next((s.get("trafficPolicy") for s in rule.spec.get("subsets", [])
                              if s.get("name") == subset), None)
    tls = merged_policy(rule.spec if rule else None, subset_policy, port).get("tls", {})
    mode = tls.get("mode", "")
    if mode == "DISABLE" or (not mode and service.mesh_external) or mode in ("SIMPLE", "MUTUAL"):
        return
    accounts = sorted({e.service_account for e in push.endpoints.get((host, port), ()) if e.service_account})
    sni = f"outbound_.{port}_.{subset}_.{host}"
    identities = [identity_of(push, service.namespace, account) for account in accounts]
    if mode == "ISTIO_MUTUAL":
        # As Istio: the rule's own `sni` and `subjectAltNames` win, so a sidecar reaching an
        # egress gateway names the external host its gateway server matches.
        sni = str(tls.get("sni") or sni)
        identities = [str(name) for name in tls.get("subjectAltNames") or ()] or identities
    socket = transport_socket(upstream_tls_context(push, sni, identities))
    if mode == "ISTIO_MUTUAL":
        cluster.transport_socket.CopyFrom(socket)
        return
    match = struct_pb2.Struct()
    match.update(ISTIO_TLS_MODE)
    cluster.transport_socket_matches.add(name="tlsMode-istio", match=match, transport_socket=socket)
    cluster.transport_socket_matches.add(
        name="tlsMode-disabled", match=struct_pb2.Struct(),
        transport_socket=base_pb2.TransportSocket(
            name="envoy.transport_sockets.raw_buffer", typed_config=pack(raw_buffer_pb2.RawBuffer())))
