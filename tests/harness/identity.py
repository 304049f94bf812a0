"""Workload identity for tests: certificates from a real citadel or a throwaway CA, an
Envoy bootstrap override with an mTLS listener fed by SDS, and an mTLS client."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from libs.pki import SpiffeId, cert_pem, key_pem, parse_key_type
from libs.proto_gen.istio.v1.auth import ca_pb2, ca_pb2_grpc
from services.agent.identity import new_key_and_csr
from services.citadel.ca import CertificateAuthority, IssuancePolicy, check_csr, self_signed_root
from tests.harness.http import HTTP


def _sds_source() -> dict[str, Any]:
    return {"api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                                  "set_node_on_first_message_only": True,
                                  "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]},
            "resource_api_version": "V3", "initial_fetch_timeout": "0s"}


def mtls_listener_override(port: int, *, host: str = "127.0.0.1") -> dict[str, Any]:
    """A static listener terminating TLS with SDS `default`, requiring client certs that
    verify against SDS `ROOTCA`, answering 200 "ok" to everything."""
    tls = {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
           "require_client_certificate": True,
           "common_tls_context": {
               "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": _sds_source()}],
               "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": _sds_source()}}}
    manager = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                        "HttpConnectionManager",
               "stat_prefix": "mtls",
               "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                   {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
               "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                   "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    listener = {"name": "mtls", "address": {"socket_address": {"address": host, "port_value": port}},
                "filter_chains": [{
                    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
                    "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}]}
    return {"static_resources": {"listeners": [listener]}}


def write_override(path: Path, port: int) -> Path:
    path.write_text(json.dumps(mtls_listener_override(port), indent=1))
    return path


@dataclass
class ClientCert:
    """A client identity on disk for ssl: key, chain (leaf + intermediates), and the CA to trust."""

    cert_file: Path
    key_file: Path
    leaf: x509.Certificate


def _write_client(directory: Path, name: str, key: bytes, chain: list[str]) -> ClientCert:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.key").write_bytes(key)
    (directory / f"{name}.key").chmod(0o600)
    (directory / f"{name}.crt").write_text("".join(chain))
    return ClientCert(directory / f"{name}.crt", directory / f"{name}.key",
                      x509.load_pem_x509_certificate(chain[0].encode()))


def request_certificate(address: str, root_pem: bytes, token: str, identity: SpiffeId, *,
                        key_type: str = "ec-p256", ttl_s: int = 3600, server_name: str = "") -> tuple[bytes, list[str]]:
    """A CSR through citadel's real gRPC API; returns (key PEM, chain PEMs leaf..root)."""
    key, csr = new_key_and_csr(key_type, identity)
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(root_pem), options=options) as channel:
        response = ca_pb2_grpc.IstioCertificateServiceStub(channel).CreateCertificate(
            ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=ttl_s),
            metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    return key_pem(key), list(response.cert_chain)


def client_from_citadel(directory: Path, name: str, address: str, root_pem: bytes, token: str,
                        identity: SpiffeId) -> ClientCert:
    key, chain = request_certificate(address, root_pem, token, identity)
    return _write_client(directory, name, key, chain[:-1])


class ThrowawayCa:
    """A CA no mesh trusts, for "a certificate from another root"."""

    def __init__(self, trust_domain: str = "cluster.local") -> None:
        now = dt.datetime.now(dt.UTC)
        self.ca = CertificateAuthority(self_signed_root(parse_key_type("ec-p256"), trust_domain, now=now),
                                       IssuancePolicy(trust_domain=trust_domain))
        self.root_pem = cert_pem(self.ca.bundle.root)

    def client(self, directory: Path, name: str, identity: SpiffeId) -> ClientCert:
        key, csr = new_key_and_csr("ec-p256", identity)
        issued = self.ca.sign_workload(check_csr(csr), identity, 3600)
        return _write_client(directory, name, key_pem(key), list(issued.chain[:-1]))


@dataclass
class MtlsAnswer:
    status: int
    body: str
    server_cert: x509.Certificate


def mtls_get(port: int, client: ClientCert, trusted_root_file: Path, *, host: str = "127.0.0.1",
             timeout: float = 3.0) -> MtlsAnswer:
    """One HTTPS request on a new TLS connection, presenting `client`; the server's cert
    must chain to `trusted_root_file`.  Workload certs carry no DNS name: only the chain
    is checked here (the SPIFFE id is the caller's to assert)."""
    context = ssl.create_default_context(cafile=str(trusted_root_file))
    context.check_hostname = False
    context.load_cert_chain(str(client.cert_file), str(client.key_file))
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = tls
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read().decode()
    return MtlsAnswer(response.status, body, x509.load_der_x509_certificate(der))


def spiffe_uris(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)


def envoy_certs(admin_base: str) -> dict[str, list[int]]:
    """Serial numbers Envoy holds, from admin /certs: {"cert_chain": [...], "ca_cert": [...]},
    each once: Envoy lists a certificate under every TLS context that uses it (a sidecar's
    port chains and its passthrough chain share `default` and `ROOTCA`)."""
    found: dict[str, list[int]] = {"cert_chain": [], "ca_cert": []}
    for entry in HTTP.get(f"{admin_base}/certs", timeout=2.0).json().get("certificates", []):
        for kind, serials in found.items():
            # Envoy prints serials as zero-padded hex; compare them as numbers.
            serials.extend(n for n in (int(c["serial_number"], 16) for c in entry.get(kind, []))
                           if n not in serials)
    return found
