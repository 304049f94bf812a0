"""The agent's SDS server and what feeds it, built from settings.

When it runs: whenever `sds_enabled` (the default), on every proxy, as Istio's agent does.
Identity is optional; the SDS server is not, because pilot hands every TLS file it names
(gateway certificates, DestinationRule client certificates and CAs) to Envoy as
`file-cert:` / `file-root:` secrets, on sidecars as well as gateways, and gateways take
`credentialName` secrets from it too.  Turning it off fits only a proxy that needs none of
these (Envoy would refuse a config naming `sds-grpc` without the cluster).

Credentials (`kubernetes://`) come from at most one source: `credentials_dir` (the local
mesh) or `credentials_from_kubernetes`; both are consulted for router proxies only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry

from libs.kube import KubeClient, KubeConfigError
from libs.runtime import Backoff, Supervisor
from services.agent.credentials import CredentialStore
from services.agent.credentials_files import FileCredentialStore
from services.agent.credentials_kube import KubeCredentialStore
from services.agent.errors import ConfigurationError
from services.agent.sds import SdsMetrics, SdsServer
from services.agent.sds_credentials import CredentialMetrics, CredentialSecrets, ServePolicy
from services.agent.sds_secrets import SecretStore
from services.agent.settings import AgentSettings
from services.agent.trust import TrustBundle

log = structlog.get_logger(__name__)


def check_settings(settings: AgentSettings) -> None:
    """Settings that cannot work together; raises ConfigurationError."""
    if settings.pilot_tls and not settings.identity_enabled:
        raise ConfigurationError("pilot_tls needs identity_enabled: pilot's certificate is checked against the "
                                 "mesh's roots, which the workload identity brings")
    if settings.identity_enabled and not settings.sds_enabled:
        raise ConfigurationError("identity_enabled needs sds_enabled: the workload certificate reaches Envoy "
                                 "over SDS")
    if settings.credentials_dir is not None and settings.credentials_from_kubernetes:
        raise ConfigurationError("credentials_dir and credentials_from_kubernetes are exclusive: pick one source "
                                 "of gateway credentials")
    if not settings.sds_enabled and (settings.credentials_dir is not None or settings.credentials_from_kubernetes):
        raise ConfigurationError("credentials are served over SDS: they need sds_enabled")


@dataclass
class Sds:
    secrets: SecretStore
    server: SdsServer
    credentials: CredentialSecrets
    store: CredentialStore | None
    kube: KubeClient | None

    async def start(self, supervisor: Supervisor) -> None:
        """Bind the SDS socket and watch the credential sources; Envoy may start after this."""
        await self.server.start()
        supervisor.on_stop("sds", self.server.stop)
        if self.store is not None:
            supervisor.start("credential-store", self.store.run, restart=Backoff(initial_s=0.5, maximum_s=10.0))
        supervisor.start("certificate-files", self.credentials.watch_files,
                         restart=Backoff(initial_s=0.5, maximum_s=10.0))
        if self.kube is not None:
            kube = self.kube

            async def close() -> None:
                kube.close()

            supervisor.on_stop("kube-client", close)


def _store(settings: AgentSettings, environ: Mapping[str, str]) -> tuple[CredentialStore | None, KubeClient | None]:
    configured = settings.credentials_dir is not None or settings.credentials_from_kubernetes
    if configured and settings.node_type != "router":
        log.warning("credentials are served to router proxies only; the configured source is ignored",
                    node_type=settings.node_type)
        return None, None
    if settings.credentials_dir is not None:
        return FileCredentialStore(settings.credentials_dir, poll_interval_s=settings.credentials_poll_interval_s), None
    if settings.credentials_from_kubernetes:
        try:
            kube = KubeClient.connect(settings.kubeconfig, environ=environ)
        except KubeConfigError as exc:
            raise ConfigurationError(f"credentials_from_kubernetes: {exc}") from exc
        return KubeCredentialStore(kube, settings.namespace), kube
    return None, None


def build_sds(settings: AgentSettings, registry: CollectorRegistry, environ: Mapping[str, str]) -> Sds:
    """Raises ConfigurationError."""
    check_settings(settings)
    secrets = SecretStore(TrustBundle(settings.root_retention_s))
    store, kube = _store(settings, environ)
    credentials = CredentialSecrets(
        secrets, ServePolicy(settings.namespace, settings.node_type == "router", settings.identity_enabled), store,
        poll_interval_s=settings.credentials_poll_interval_s, metrics=CredentialMetrics(registry))
    server = SdsServer(secrets, settings.sds_socket_path, SdsMetrics(registry))
    if store is not None:
        log.info("serving gateway credentials", source=store.source, namespace=settings.namespace)
    return Sds(secrets, server, credentials, store, kube)
