"""Secrets Envoy takes from the agent beside it (the static `sds-grpc` cluster, a Unix
socket), with Istio's names: the workload's `default` / `ROOTCA`, `credentialName` secrets
(`kubernetes://…`), and certificate files as `file-cert:<cert>~<key>` / `file-root:<ca>`.

Files go through the agent rather than into the TLS context as `filename`, as Istio does:
a missing or unreadable file then leaves only the listener or cluster that names it
waiting, where a `filename` makes Envoy reject the whole LDS/CDS update; and the agent
watches the files and pushes a rotated certificate, which Envoy would not pick up.
"""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from libs.envoy import duration
from services.pilot.networking import names

FILE_CERT = "file-cert:"
FILE_ROOT = "file-root:"
# Between the certificate and the key path (Istio's ResourceSeparator).
FILE_SEPARATOR = "~"


def sds_secret_config(name: str, *, wait_forever: bool = False) -> secret_pb2.SdsSecretConfig:
    """A secret the agent serves over `sds-grpc`.

    Istio waits without limit for the workload's own `default`/`ROOTCA` (`wait_forever`),
    but keeps Envoy's default fetch timeout (15 s) for credentials and files, which may name
    secrets that do not exist: after it, the listener or cluster stops warming and refuses
    TLS until the secret arrives, instead of holding back the rest of its config forever.
    """
    source = config_source_pb2.ConfigSource(
        resource_api_version=config_source_pb2.V3,
        api_config_source=config_source_pb2.ApiConfigSource(
            api_type=config_source_pb2.ApiConfigSource.GRPC,
            transport_api_version=config_source_pb2.V3,
            set_node_on_first_message_only=True,
            grpc_services=[grpc_service_pb2.GrpcService(
                envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=names.SDS_CLUSTER))],
        ),
    )
    if wait_forever:
        source.initial_fetch_timeout.CopyFrom(duration(0))
    return secret_pb2.SdsSecretConfig(name=name, sds_config=source)


def file_cert_name(cert_path: str, key_path: str) -> str:
    """Istio's SdsCertificateConfig.GetResourceName."""
    return f"{FILE_CERT}{cert_path}{FILE_SEPARATOR}{key_path}"


def file_root_name(ca_path: str) -> str:
    """Istio's SdsCertificateConfig.GetRootResourceName."""
    return f"{FILE_ROOT}{ca_path}"


def file_certificate(cert_path: str, key_path: str) -> secret_pb2.SdsSecretConfig:
    return sds_secret_config(file_cert_name(cert_path, key_path))


def file_root(ca_path: str) -> secret_pb2.SdsSecretConfig:
    return sds_secret_config(file_root_name(ca_path))
