"""RequestAuthentication as Envoy's jwt_authn filter, with Istio's semantics.

Every `jwtRules` entry of the policies that apply to a proxy is one JWT provider.  A
request with a token must present one that some provider verifies (else 401); a request
without a token passes, because authentication alone requires nothing: an
AuthorizationPolicy with `requestPrincipals` (or a `request.auth.*` condition) is what
makes a token required.  Verified claims go to dynamic metadata (`payload`), where the
RBAC filters' `request.auth.*` matchers read them.

A `jwksUri` is fetched by Envoy itself, through a cluster built here for its host (or the
registry's cluster when the host is a mesh service), and cached for `JWKS_CACHE_S`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, http_uri_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from libs.config.durations import parse_duration
from libs.envoy import TLS_SOCKET, duration, pack
from services.pilot.model.policies import policies_for
from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import names
from services.pilot.networking.authz_matchers import JWT_FILTER, JWT_PAYLOAD
from services.pilot.networking.endpoints import socket_address

# Claims whose space-separated string values are matched as lists (OAuth scopes).
SPACE_DELIMITED_CLAIMS = ("scope", "permission")
JWKS_CACHE_S = 20 * 60
JWKS_FETCH_TIMEOUT_S = 5.0
# Where Debian and most distributions keep the public CAs an https jwksUri is checked against.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class JwtOutput:
    filter: hcm.HttpFilter | None = None
    # Clusters for jwksUri hosts that are not mesh services.
    clusters: list[cluster_pb2.Cluster] = field(default_factory=list)
    # Every cluster the filter fetches keys through.
    references: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def jwks_cluster_name(host: str, port: int) -> str:
    return f"jwks|{host}|{port}"


def _jwks_cluster(push: PushContext, scheme: str, host: str, port: int) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(name=jwks_cluster_name(host, port), connect_timeout=duration(
        push.mesh.connect_timeout_s))
    try:
        ipaddress.ip_address(host)
        cluster.type = cluster_pb2.Cluster.STATIC
    except ValueError:
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
    cluster.load_assignment.cluster_name = cluster.name
    cluster.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address.CopyFrom(socket_address(host, port))
    if scheme == "https":
        context = tls_pb2.UpstreamTlsContext(sni=host)
        context.common_tls_context.validation_context.trusted_ca.filename = SYSTEM_CA_BUNDLE
        cluster.transport_socket.name = TLS_SOCKET
        cluster.transport_socket.typed_config.CopyFrom(pack(context))
    return cluster


def _remote_jwks(uri: str, timeout_s: float, push: PushContext, out: JwtOutput) -> jwt.RemoteJwks:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    service = push.services.get(host)
    if service is not None and any(p.number == port for p in service.ports):
        cluster = names.outbound_cluster(port, "", host)
    else:
        cluster = jwks_cluster_name(host, port)
        if all(c.name != cluster for c in out.clusters):
            out.clusters.append(_jwks_cluster(push, parts.scheme, host, port))
    out.references.add(cluster)
    remote = jwt.RemoteJwks(http_uri=http_uri_pb2.HttpUri(uri=uri, cluster=cluster, timeout=duration(timeout_s)),
                            cache_duration=duration(JWKS_CACHE_S))
    return remote


def _provider(rule: dict[str, Any], where: str, push: PushContext, out: JwtOutput) -> jwt.JwtProvider:
    provider = jwt.JwtProvider(issuer=rule["issuer"], audiences=rule.get("audiences", []),
                               forward=bool(rule.get("forwardOriginalToken", False)),
                               payload_in_metadata=JWT_PAYLOAD,
                               forward_payload_header=rule.get("outputPayloadToHeader", ""))
    provider.normalize_payload_in_metadata.space_delimited_claims.extend(
        dict.fromkeys([*SPACE_DELIMITED_CLAIMS, *rule.get("spaceDelimitedClaims", [])]))
    for header in rule.get("fromHeaders", []):
        provider.from_headers.add(name=header["name"], value_prefix=header.get("prefix", ""))
    provider.from_params.extend(rule.get("fromParams", []))
    provider.from_cookies.extend(rule.get("fromCookies", []))
    for output in rule.get("outputClaimToHeaders", []):
        provider.claim_to_headers.add(header_name=output["header"], claim_name=output["claim"])
    if rule.get("outputClaimToHeaders"):
        # The new headers may change which route matches.
        provider.clear_route_cache = True
    if rule.get("jwks"):
        provider.local_jwks.CopyFrom(base_pb2.DataSource(inline_string=rule["jwks"]))
    elif rule.get("jwksUri"):
        timeout = float(parse_duration(rule["timeout"])) if rule.get("timeout") else JWKS_FETCH_TIMEOUT_S
        provider.remote_jwks.CopyFrom(_remote_jwks(rule["jwksUri"], timeout, push, out))
    else:
        # Istio would discover the keys through the issuer's OpenID configuration; Mizzen does
        # not, so no token of this issuer verifies (a request carrying one gets 401).
        out.warnings.append(f"{where}: neither jwks nor jwksUri is set; tokens from issuer {rule['issuer']} "
                            "cannot be verified and are refused")
        provider.local_jwks.CopyFrom(base_pb2.DataSource(inline_string='{"keys": []}'))
    return provider


def build(proxy: Proxy, push: PushContext) -> JwtOutput:
    out = JwtOutput()
    config = jwt.JwtAuthentication(bypass_cors_preflight=True)
    for policy in policies_for("RequestAuthentication", proxy, push):
        for index, rule in enumerate(policy.spec.get("jwtRules", [])):
            name = f"{policy.namespace}/{policy.name}/jwtRules[{index}]"
            config.providers[name].CopyFrom(_provider(rule, f"RequestAuthentication {name}", push, out))
    if not config.providers:
        return out
    requirement = jwt.JwtRequirement()
    requirement.requires_any.requirements.extend(jwt.JwtRequirement(provider_name=name)
                                                 for name in sorted(config.providers))
    # A request without any token passes authentication (an authorization policy decides).
    requirement.requires_any.requirements.add().allow_missing.SetInParent()
    config.rules.add(match=rc.RouteMatch(prefix="/"), requires=requirement)
    out.filter = hcm.HttpFilter(name=JWT_FILTER, typed_config=pack(config))
    return out
