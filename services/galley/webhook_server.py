"""Galley's validating webhook served over HTTPS, its certificate from files or from citadel.

- `files`: a certificate and key the operator provides (`--webhook-cert-file`); the webhook
  is off while none is given.  For the local mesh and for clusters whose certificates come
  from elsewhere.
- `citadel`: as the sidecar injector and pilot do, galley makes a key in memory, asks
  citadel to sign it for galley's SPIFFE id and its Service's DNS names
  (`istio-galley.istio-system.svc`, granted by citadel's `--dns-grants`), and renews it before
  it expires, or when citadel signs with a new root, without a restart
  (`libs.pki.ServingCertificate`, `ServerTls`).  The webhook listens once the first
  certificate is in place, and /readyz waits for it; citadel keeps the
  ValidatingWebhookConfiguration's caBundle set to the root that certificate chains to.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CollectorRegistry

from libs.pki import (
    CitadelClient,
    ServerTls,
    ServingCertificate,
    ServingIdentity,
    SpiffeId,
    root_file,
    token_from_file,
)
from libs.runtime import MonitoringServer, Readiness, SettingsError, Supervisor
from services.galley import webhook
from services.galley.api import HTTP_STATUS
from services.galley.settings import GalleySettings

log = structlog.get_logger(__name__)

FILES = "files"
CITADEL = "citadel"
CERT_SOURCES = (FILES, CITADEL)
# The /readyz condition of a webhook whose certificate comes from citadel: met once it
# listens with the first one (the API server is sent to ready pods only).
WEBHOOK_SERVING = "webhook-serving"


def check(settings: GalleySettings) -> None:
    """Refuse settings that cannot give the webhook a certificate, naming the setting."""
    source = settings.webhook_cert_source
    if source not in CERT_SOURCES:
        raise SettingsError("webhook_cert_source", "--webhook-cert-source / MIZZEN_WEBHOOK_CERT_SOURCE",
                            f"{source!r} unknown; choose from {', '.join(CERT_SOURCES)}")
    if source == FILES:
        if settings.webhook_key_file is not None and settings.webhook_cert_file is None:
            raise SettingsError("webhook_key_file", "--webhook-key-file", "given without webhook_cert_file")
        return
    if settings.webhook_cert_file is not None or settings.webhook_key_file is not None:
        raise SettingsError("webhook_cert_file", "--webhook-cert-file / --webhook-key-file",
                            "the certificate comes from citadel (webhook_cert_source=citadel); give no files")
    for name in ("citadel_root_cert", "citadel_token_file"):
        if getattr(settings, name) is None:
            raise SettingsError(name, f"--{name.replace('_', '-')}",
                                "needed with webhook_cert_source=citadel: citadel signs the webhook's certificate")
    if not settings.serving_dns_names:
        raise SettingsError("serving_dns_names", "--serving-dns-names",
                            "empty; the API server needs a DNS name to check the webhook's certificate against")


def start(supervisor: Supervisor, settings: GalleySettings, readiness: Readiness, registry: CollectorRegistry) -> None:
    """Start the webhook's tasks under `supervisor` (nothing when it is off)."""
    if settings.webhook_cert_source == CITADEL:
        _start_with_citadel(supervisor, settings, readiness, registry)
    elif settings.webhook_cert_file is not None:
        hook = MonitoringServer(
            host=settings.webhook_address, port=settings.webhook_port, readiness=readiness, registry=registry,
            routers=(webhook.router(),), error_statuses=HTTP_STATUS, ssl_certfile=str(settings.webhook_cert_file),
            ssl_keyfile=str(settings.webhook_key_file) if settings.webhook_key_file else None,
        )
        supervisor.start("webhook", hook.serve)
        supervisor.on_stop("webhook", hook.stop)


def _start_with_citadel(supervisor: Supervisor, settings: GalleySettings, readiness: Readiness,
                        registry: CollectorRegistry) -> None:
    assert settings.citadel_root_cert is not None and settings.citadel_token_file is not None  # check()
    try:
        root = settings.citadel_root_cert.read_bytes()
    except OSError as exc:
        raise SettingsError("citadel_root_cert", str(settings.citadel_root_cert),
                            f"cannot be read: {exc.strerror or exc}") from exc
    # Re-read for every CSR and watched: citadel's root rotation moves the webhook's certificate.
    signer = CitadelClient(settings.citadel_address, root_file(settings.citadel_root_cert, root),
                           token_from_file(settings.citadel_token_file), server_name=settings.citadel_server_name,
                           timeout_s=settings.citadel_timeout_s)
    supervisor.on_stop("citadel-channel", signer.close)
    tls = ServerTls("webhook")
    readiness.require(WEBHOOK_SERVING)
    identity = ServingIdentity(SpiffeId(settings.trust_domain, settings.namespace, settings.service_account),
                               settings.serving_dns_names)
    certificate = ServingCertificate(signer, identity, tls.install, registry, metric_prefix="galley",
                                     what="webhook", ttl_s=settings.serving_cert_ttl_s,
                                     rotation_fraction=settings.cert_rotation_fraction,
                                     retry_initial_s=settings.citadel_retry_initial_s,
                                     retry_max_s=settings.citadel_retry_max_s)
    supervisor.start("webhook-cert", certificate.run)
    hook = MonitoringServer(host=settings.webhook_address, port=settings.webhook_port, readiness=readiness,
                            registry=registry, routers=(webhook.router(),), error_statuses=HTTP_STATUS,
                            ssl_context=tls.server_context)

    async def ready_once_listening() -> None:
        await hook.started()
        readiness.mark(WEBHOOK_SERVING)
        log.info("webhook serving", address=settings.webhook_address, port=settings.webhook_port,
                 dns_names=list(settings.serving_dns_names))

    async def serve() -> None:
        # A TLS handshake needs a certificate: listen once citadel has signed the first.
        await certificate.ready()
        await asyncio.gather(hook.serve(), ready_once_listening())

    supervisor.start("webhook", serve)
    supervisor.on_stop("webhook", hook.stop)
