"""DestinationRule `tls` -> the cluster's `envoy.transport_sockets.tls` UpstreamTlsContext
(Istio's buildUpstreamClusterTLSContext / constructUpstreamTLS): TLS origination toward a
destination, with certificates from files or from a `credentialName` secret.

Certificate files reach Envoy as Istio's do: the agent reads them and serves them over SDS
(`file-cert:<cert>~<key>`, `file-root:<ca>`, see `sds_secrets`), watching them for rotation;
a file missing on the proxy's host leaves that one cluster failing closed, not the whole CDS
update rejected.  The CRL stays a file Envoy reads, as in Istio.

Deviations from Istio, on purpose:
- Without `caCertificates` Istio verifies against the OS roots, found by its agent.  Pilot is
  pure and cannot look for them; it names `SYSTEM_CA_BUNDLE`, the Debian/Ubuntu bundle path
  (Envoy's images and this project's hosts), as `file-root:`, which the agent must be able
  to read.
- ISTIO_MUTUAL (the mesh's own certificates) is owned by the mTLS work and adds nothing here.
"""

from __future__ import annotations

import ipaddress
from typing import Any, TypeAlias

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from libs.envoy import TLS_SOCKET, pack
from services.pilot.networking.cluster_pool import HttpOptions, is_http2
from services.pilot.networking.sds_secrets import file_certificate, file_root, sds_secret_config

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Istio's names for a credentialName secret: `kubernetes://<name>` and its CA `…-cacert`.
CREDENTIAL_PREFIX = "kubernetes://"
CA_SUFFIX = "-cacert"
_KEPT_TYPES = (CREDENTIAL_PREFIX, "kubernetes-gateway://", "configmap://")

SanMatcher: TypeAlias = common_pb2.SubjectAltNameMatcher


def credential_resource(name: str) -> str:
    """Istio's credentials.ToResourceName: `builtin://` is the workload's own certificate
    (`default`), an explicit Kubernetes type is kept, anything else is a Kubernetes secret."""
    if name.startswith("builtin://"):
        return "default"
    if name.startswith(_KEPT_TYPES):
        return name
    return CREDENTIAL_PREFIX + name


def credential_sds(name: str) -> secret_pb2.SdsSecretConfig:
    """A credentialName secret, asked of the node agent's `sds-grpc` SDS server.

    Pilot serves no secrets over ADS yet (Istio's modern answer, with an ADS ConfigSource);
    until it does, Istio's earlier gateway-agent path is the one that can be served.
    """
    return sds_secret_config(credential_resource(name))


def _san_matchers(names: list[str]) -> list[SanMatcher]:
    """Exact matches.  Istio's SAN strings carry no type (Envoy's deprecated untyped matcher
    tried every SAN), so each is tried as DNS and URI, and as IP when it is an address: the
    same as gateway TLS does for client certificates."""
    matchers: list[SanMatcher] = []
    for name in names:
        kinds = [SanMatcher.DNS, SanMatcher.URI]
        try:
            ipaddress.ip_address(name)
            kinds.append(SanMatcher.IP_ADDRESS)
        except ValueError:
            pass
        matchers.extend(SanMatcher(san_type=kind, matcher=string_pb2.StringMatcher(exact=name)) for kind in kinds)
    return matchers


def _file(path: str) -> base_pb2.DataSource:
    return base_pb2.DataSource(filename=path)


def _validation(tls: dict[str, Any]) -> common_pb2.CertificateValidationContext:
    """What is checked beyond the CA, which comes from the agent (`file-root:`)."""
    context = common_pb2.CertificateValidationContext(
        match_typed_subject_alt_names=_san_matchers(tls.get("subjectAltNames", [])),
    )
    if tls.get("caCrl"):
        context.crl.CopyFrom(_file(tls["caCrl"]))
    return context


def upstream_tls_context(tls: dict[str, Any], options: HttpOptions) -> tls_pb2.UpstreamTlsContext:
    """SIMPLE or MUTUAL.  Without `sni` Envoy sends the request's host (auto_sni) and, without
    `subjectAltNames` either, checks the server's certificate against it (auto_san_validation)."""
    skip_verify = bool(tls.get("insecureSkipVerify"))
    context = tls_pb2.UpstreamTlsContext(sni=tls.get("sni", ""))
    common = context.common_tls_context
    if not context.sni:
        options.upstream_http_protocol_options.auto_sni = True
        if not tls.get("subjectAltNames") and not skip_verify:
            options.upstream_http_protocol_options.auto_san_validation = True
    if tls.get("credentialName"):
        common.tls_certificate_sds_secret_configs.append(credential_sds(tls["credentialName"]))
        if not skip_verify:
            combined = common.combined_validation_context
            combined.default_validation_context.match_typed_subject_alt_names.extend(
                _san_matchers(tls.get("subjectAltNames", [])))
            combined.validation_context_sds_secret_config.CopyFrom(credential_sds(tls["credentialName"] + CA_SUFFIX))
    else:
        if tls["mode"] == "MUTUAL":
            common.tls_certificate_sds_secret_configs.append(
                file_certificate(tls["clientCertificate"], tls["privateKey"]))
        if skip_verify:
            # An empty validation context: any server certificate is accepted.
            common.validation_context.SetInParent()
        else:
            combined = common.combined_validation_context
            combined.default_validation_context.CopyFrom(_validation(tls))
            combined.validation_context_sds_secret_config.CopyFrom(
                file_root(tls.get("caCertificates") or SYSTEM_CA_BUNDLE))
    if is_http2(options):
        common.alpn_protocols.append("h2")
    return context


def apply_upstream_tls(cluster: cluster_pb2.Cluster, tls: dict[str, Any] | None, options: HttpOptions) -> None:
    mode = (tls or {}).get("mode", "DISABLE")
    if tls is None or mode == "DISABLE":
        return
    if mode == "ISTIO_MUTUAL":
        # The mesh's own certificates (SDS `default` / `ROOTCA`): `mtls.secure_cluster`
        # builds that socket, with the rule's `sni` and `subjectAltNames`.
        return
    context = upstream_tls_context(tls, options)
    cluster.transport_socket.name = TLS_SOCKET
    cluster.transport_socket.typed_config.CopyFrom(pack(context))
