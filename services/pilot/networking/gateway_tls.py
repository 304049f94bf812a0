"""A Gateway server's `tls` block -> Envoy's DownstreamTlsContext (Istio's
BuildListenerTLSContext): certificates from the agent's SDS, whether files (`file-cert:`,
`file-root:`), `credentialName` secrets or the workload's own (ISTIO_MUTUAL); client
validation for MUTUAL and OPTIONAL_MUTUAL, protocol versions and cipher suites."""

from __future__ import annotations

import ipaddress
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from libs.config.validation.tls import CIPHER_SUITES
from services.pilot.networking import names
from services.pilot.networking.sds_secrets import file_certificate, file_root, sds_secret_config

# ALPN an HTTPS server offers (Istio's ALPNHttp).
HTTP_ALPN = ("h2", "http/1.1")
# What Istio sidecars offer when they originate mTLS; AUTO_PASSTHROUGH matches on them.
ISTIO_MTLS_ALPN = ("istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2")
KUBERNETES_SECRET = "kubernetes://"
# Istio's suffix for the CA bundle of a credential (its `ca.crt`).
CA_SUFFIX = "-cacert"
_EXPLICIT_SCHEMES = ("kubernetes://", "kubernetes-gateway://", "configmap://")
_BUILTIN = "builtin://"
_CURVES = frozenset({"P-256", "P-384", "P-521", "X25519", "X25519MLKEM768"})
_VERSIONS = {
    "TLS_AUTO": common_pb2.TlsParameters.TLS_AUTO,
    "TLSV1_0": common_pb2.TlsParameters.TLSv1_0,
    "TLSV1_1": common_pb2.TlsParameters.TLSv1_1,
    "TLSV1_2": common_pb2.TlsParameters.TLSv1_2,
    "TLSV1_3": common_pb2.TlsParameters.TLSv1_3,
}
TERMINATING_MODES = frozenset({"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL"})


def credential_resource_name(credential: str) -> str:
    """Istio's credentials.ToResourceName: `name` is `kubernetes://name`; an explicit scheme
    stays; `builtin://` is the proxy's own workload certificate."""
    if credential.startswith(_BUILTIN):
        return names.SDS_DEFAULT_SECRET
    if credential.startswith(_EXPLICIT_SCHEMES):
        return credential
    return KUBERNETES_SECRET + credential


def _file(path: str) -> base_pb2.DataSource:
    return base_pb2.DataSource(filename=path)


def san_matchers(sans: list[str]) -> list[common_pb2.SubjectAltNameMatcher]:
    """Exact matches for each SAN: Istio's SAN strings carry no type, so DNS and URI (and IP
    for addresses) are each tried."""
    matchers: list[common_pb2.SubjectAltNameMatcher] = []
    for san in sans:
        types = [common_pb2.SubjectAltNameMatcher.DNS, common_pb2.SubjectAltNameMatcher.URI]
        try:
            ipaddress.ip_address(san)
            types.append(common_pb2.SubjectAltNameMatcher.IP_ADDRESS)
        except ValueError:
            pass
        matchers.extend(common_pb2.SubjectAltNameMatcher(san_type=t, matcher=string_pb2.StringMatcher(exact=san))
                        for t in types)
    return matchers


def _peer_checks(tls: dict[str, Any]) -> common_pb2.CertificateValidationContext:
    context = common_pb2.CertificateValidationContext(
        match_typed_subject_alt_names=san_matchers(tls.get("subjectAltNames", [])))
    context.verify_certificate_spki.extend(tls.get("verifyCertificateSpki", []))
    context.verify_certificate_hash.extend(tls.get("verifyCertificateHash", []))
    return context


def _certificates_from_files(common: tls_pb2.CommonTlsContext, tls: dict[str, Any]) -> str:
    """Asks the agent for the certificate files (`file-cert:`); returns the CA bundle path."""
    pairs = [(tls["serverCertificate"], tls["privateKey"])] if tls.get("serverCertificate") else []
    pairs += [(c["serverCertificate"], c["privateKey"]) for c in tls.get("tlsCertificates", [])]
    for chain, key in pairs:
        common.tls_certificate_sds_secret_configs.append(file_certificate(str(chain), str(key)))
    ca = str(tls.get("caCertificates", ""))
    if not ca:
        ca = next((str(c["caCertificates"]) for c in tls.get("tlsCertificates", []) if c.get("caCertificates")), "")
    return ca


def _tls_params(common: tls_pb2.CommonTlsContext, tls: dict[str, Any], where: str, warnings: list[str]) -> None:
    params = common.tls_params
    minimum, maximum = tls.get("minProtocolVersion", "TLS_AUTO"), tls.get("maxProtocolVersion", "TLS_AUTO")
    params.tls_minimum_protocol_version = _VERSIONS.get(minimum, common_pb2.TlsParameters.TLS_AUTO)
    params.tls_maximum_protocol_version = _VERSIONS.get(maximum, common_pb2.TlsParameters.TLS_AUTO)
    # Istio's FilterCipherSuites: BoringSSL names only (Envoy refuses the context on an unknown
    # one), first occurrence wins.
    for suite in dict.fromkeys(tls.get("cipherSuites", [])):
        if suite in CIPHER_SUITES:
            params.cipher_suites.append(suite)
        else:
            warnings.append(f"{where}: cipher suite {suite!r} is not one Envoy knows; ignored")
    for curve in dict.fromkeys(tls.get("ecdhCurves", [])):
        if curve in _CURVES:
            params.ecdh_curves.append(curve)
        else:
            warnings.append(f"{where}: ECDH curve {curve!r} is not one Envoy knows; ignored")
    if params.ByteSize() == 0:
        common.ClearField("tls_params")


def downstream_tls_context(tls: dict[str, Any], *, http: bool, where: str,
                           warnings: list[str]) -> tls_pb2.DownstreamTlsContext | None:
    """None when the mode does not terminate TLS (passthrough) or cannot be served."""
    mode = str(tls.get("mode", "PASSTHROUGH"))
    if mode not in TERMINATING_MODES:
        return None
    context = tls_pb2.DownstreamTlsContext()
    common = context.common_tls_context
    common.alpn_protocols.extend(tls.get("alpnProtocols") or (HTTP_ALPN if http else ()))
    validate_client = mode in ("MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL")
    context.require_client_certificate.value = mode in ("MUTUAL", "ISTIO_MUTUAL")
    credentials = list(tls.get("credentialNames") or ([tls["credentialName"]] if tls.get("credentialName") else []))
    if mode == "ISTIO_MUTUAL":
        # The gateway's own workload certificate and the mesh's roots, from its agent.
        common.tls_certificate_sds_secret_configs.append(
            sds_secret_config(names.SDS_DEFAULT_SECRET, wait_forever=True))
        combined = common.combined_validation_context
        combined.default_validation_context.CopyFrom(_peer_checks(tls))
        combined.validation_context_sds_secret_config.CopyFrom(
            sds_secret_config(names.SDS_ROOT_SECRET, wait_forever=True))
    elif credentials:
        common.tls_certificate_sds_secret_configs.extend(
            sds_secret_config(credential_resource_name(c)) for c in credentials)
        if tls.get("caCertCredentialName"):
            warnings.append(f"{where}: caCertCredentialName is not supported yet; the client CA comes from "
                            f"{credentials[0]}{CA_SUFFIX}")
        if validate_client:
            combined = common.combined_validation_context
            combined.default_validation_context.CopyFrom(_peer_checks(tls))
            combined.validation_context_sds_secret_config.CopyFrom(
                sds_secret_config(credential_resource_name(credentials[0] + CA_SUFFIX)))
    else:
        ca = _certificates_from_files(common, tls)
        if not common.tls_certificate_sds_secret_configs:
            warnings.append(f"{where}: {mode} TLS names no certificate; the server is skipped")
            return None
        if validate_client:
            if not ca:
                warnings.append(f"{where}: {mode} TLS names no caCertificates to verify clients with; "
                                "the server is skipped")
                return None
            combined = common.combined_validation_context
            combined.default_validation_context.CopyFrom(_peer_checks(tls))
            # The CA from the agent (`file-root:`); the CRL stays a file, as in Istio.
            combined.validation_context_sds_secret_config.CopyFrom(file_root(ca))
            if tls.get("caCrl"):
                combined.default_validation_context.crl.CopyFrom(_file(str(tls["caCrl"])))
    if not validate_client and (tls.get("subjectAltNames") or tls.get("verifyCertificateSpki")
                                or tls.get("verifyCertificateHash")):
        warnings.append(f"{where}: {mode} TLS does not ask clients for certificates; subjectAltNames and "
                        "certificate pins are ignored")
    _tls_params(common, tls, where, warnings)
    return context
