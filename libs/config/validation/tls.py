"""TLS settings: ServerTLSSettings (Gateway servers, Sidecar ingress) and ClientTLSSettings
(DestinationRule), with Istio's rules on which certificate fields each mode needs."""

from __future__ import annotations

from typing import Any

from libs.config.validation._checker import Checker

# Cipher suites Envoy's BoringSSL accepts (Istio's security.ValidCipherSuites).
CIPHER_SUITES = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
})
_FILE_FIELDS = ("serverCertificate", "privateKey", "caCertificates", "caCrl")


def _cipher_suites(check: Checker, path: str, suites: list[str]) -> None:
    seen: set[str] = set()
    for i, suite in enumerate(suites):
        # Leading operators ("-", "+", "!") are OpenSSL cipher-string syntax, passed through.
        if suite and suite != "ALL" and suite[0].isalnum() and suite not in CIPHER_SUITES:
            check.warn(f"{path}[{i}]", f"unknown cipher suite {suite!r} is ignored")
        elif suite in seen:
            check.warn(f"{path}[{i}]", f"duplicate cipher suite {suite!r} is ignored")
        seen.add(suite)


def _credential_exclusions(check: Checker, path: str, tls: dict[str, Any]) -> None:
    # The CRD's x-kubernetes-validations: one way of naming certificates at a time.
    pairs = (("credentialName", "credentialNames"), ("credentialNames", "tlsCertificates"),
             ("credentialName", "tlsCertificates"))
    for first, second in pairs:
        if tls.get(first) and tls.get(second):
            check.error(path, f"only one of {first} or {second} can be set")
    for i, certificate in enumerate(tls.get("tlsCertificates", [])):
        for field in ("serverCertificate", "privateKey"):
            if not certificate.get(field):
                check.error(f"{path}.tlsCertificates[{i}].{field}", "required in a TLS certificate")


def server_tls(check: Checker, path: str, tls: dict[str, Any]) -> None:
    """Istio's validateTLSOptions."""
    mode = tls.get("mode", "PASSTHROUGH")
    if tls.get("minProtocolVersion") in ("TLSV1_0", "TLSV1_1") and not tls.get("cipherSuites"):
        check.warn(f"{path}.minProtocolVersion", "TLS versions below TLSV1_2 need cipherSuites set: the "
                                                 "default ciphers no longer include compatible ones")
    _cipher_suites(check, f"{path}.cipherSuites", tls.get("cipherSuites", []))
    _credential_exclusions(check, path, tls)
    if mode == "ISTIO_MUTUAL":
        # Istio's own workload certificates are used; naming others is a contradiction.
        for field in ("serverCertificate", "privateKey", "caCertificates", "credentialName"):
            if tls.get(field):
                check.error(f"{path}.{field}", "ISTIO_MUTUAL TLS cannot name certificates")
        return
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        if any(tls.get(field) for field in (*_FILE_FIELDS, "credentialName")):
            check.warn(path, f"{mode} mode does not use certificates; they are ignored")
        return
    if tls.get("credentialName") or tls.get("credentialNames") or tls.get("tlsCertificates"):
        # Certificates (and any CRL) come from the named secrets, so no file is required.
        return
    for field in ("serverCertificate", "privateKey"):
        if not tls.get(field):
            check.error(f"{path}.{field}", f"{mode} TLS requires {field} (or a credentialName)")
    if mode in ("MUTUAL", "OPTIONAL_MUTUAL") and not tls.get("caCertificates"):
        check.error(f"{path}.caCertificates", f"{mode} TLS requires a client CA bundle (or a credentialName)")
    if tls.get("caCrl") and mode == "SIMPLE":
        check.error(f"{path}.caCrl", "caCrl is not supported with SIMPLE TLS (no client certificates)")


def client_tls(check: Checker, path: str, tls: dict[str, Any]) -> None:
    """Istio's agent.ValidateTLS for DestinationRule trafficPolicy.tls."""
    mode = tls.get("mode", "DISABLE")
    if tls.get("insecureSkipVerify"):
        if mode == "SIMPLE" and (tls.get("caCertificates") or tls.get("credentialName") or "subjectAltNames" in tls):
            check.error(path, "cannot set caCertificates, credentialName or subjectAltNames when "
                              "insecureSkipVerify is true")
        if mode == "MUTUAL" and (tls.get("caCertificates") or "subjectAltNames" in tls):
            check.error(path, "cannot set caCertificates or subjectAltNames when insecureSkipVerify is true")
    if mode in ("SIMPLE", "MUTUAL") and tls.get("credentialName"):
        if any(tls.get(field) for field in ("clientCertificate", "caCertificates", "privateKey", "caCrl")):
            check.error(path, "cannot set clientCertificate, privateKey, caCertificates or caCrl when "
                              "credentialName is set")
        return
    if mode == "MUTUAL":
        for field in ("clientCertificate", "privateKey"):
            if not tls.get(field):
                check.error(f"{path}.{field}", f"{field} is required for MUTUAL TLS (or a credentialName)")
