"""The injector's run(): config in, the webhook served over TLS once citadel has signed its
certificate, every task under one Supervisor."""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry

from libs.bus import Bus, BusSettings
from libs.inject import InjectionConfig, InvalidConfig, MeshSettings
from libs.pki import (
    CitadelClient,
    PkiError,
    ServingCertificate,
    ServingIdentity,
    SpiffeId,
    root_file,
    token_from_file,
)
from libs.runtime import FatalServiceError, MonitoringServer, Readiness, Supervisor
from services.sidecar_injector.config_source import InjectionConfigFiles, MeshConfigWatch
from services.sidecar_injector.errors import ConfigNotLoaded
from services.sidecar_injector.serving_cert import WebhookTls
from services.sidecar_injector.settings import InjectorSettings
from services.sidecar_injector.webhook import WebhookMetrics, router

log = structlog.get_logger(__name__)


def _configure(settings: InjectorSettings, registry: CollectorRegistry) -> tuple[InjectionConfigFiles, ServingIdentity,
                                                                               bytes]:
    """What must be right before anything starts; raises with the setting named."""
    files = InjectionConfigFiles(settings.inject_config_file, settings.inject_values_file, registry,
                                 poll_interval_s=settings.config_poll_interval_s)
    if not settings.serving_dns_names:
        raise ValueError("serving_dns_names is empty; the API server needs a DNS name to check")
    identity = ServingIdentity(SpiffeId(settings.trust_domain, settings.namespace, settings.service_account),
                               settings.serving_dns_names)
    try:
        root = settings.citadel_root_cert.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read citadel_root_cert {settings.citadel_root_cert}: {exc.strerror}") from exc
    return files, identity, root


async def run(settings: InjectorSettings) -> None:
    supervisor = Supervisor("sidecar-injector", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    readiness = Readiness()
    monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                  readiness=readiness, registry=registry)
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    try:
        files, identity, root = _configure(settings, registry)
    except (InvalidConfig, PkiError, ValueError) as exc:
        await supervisor.shutdown()
        raise FatalServiceError("configure", exc) from exc
    # Re-read for every CSR and watched: citadel's root rotation moves the webhook's certificate.
    signer = CitadelClient(settings.citadel_address, root_file(settings.citadel_root_cert, root),
                           token_from_file(settings.citadel_token_file),
                           server_name=settings.citadel_server_name, timeout_s=settings.citadel_timeout_s)
    supervisor.on_stop("citadel-channel", signer.close)
    tls = WebhookTls(readiness)
    certificate = ServingCertificate(signer, identity, tls.install, registry, metric_prefix="sidecar_injector",
                                     what="webhook", ttl_s=settings.cert_ttl_s,
                                     rotation_fraction=settings.cert_rotation_fraction,
                                     retry_initial_s=settings.citadel_retry_initial_s,
                                     retry_max_s=settings.citadel_retry_max_s)
    supervisor.start("config-files", files.run)
    supervisor.start("serving-cert", certificate.run)
    mesh = MeshConfigWatch(settings.system_namespace, readiness)

    def configs() -> tuple[InjectionConfig, MeshSettings]:
        if not mesh.synced:
            raise ConfigNotLoaded("the mesh config has not been read from mesh-config yet")
        return files.current, mesh.current

    webhook = MonitoringServer(host=settings.webhook_address, port=settings.webhook_port, readiness=readiness,
                               registry=registry, routers=(router(configs, WebhookMetrics(registry)),),
                               ssl_context=tls.server_context)

    async def serve_webhook() -> None:
        # TLS handshakes need a certificate: listen once citadel has signed the first.
        await certificate.ready()
        log.info("webhook serving", address=settings.webhook_address, port=settings.webhook_port,
                 dns_names=list(settings.serving_dns_names))
        await webhook.serve()

    supervisor.start("webhook", serve_webhook)
    supervisor.on_stop("webhook", webhook.stop)
    bus = await Bus.connect(BusSettings(url=settings.nats_url, connect_timeout_s=None), name="sidecar-injector")
    try:
        await mesh.start(supervisor, bus)
        await supervisor.wait()
    finally:
        await bus.close()
