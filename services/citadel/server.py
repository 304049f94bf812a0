"""Citadel's run(): load the CA, serve the CSR API over TLS, publish the trust bundle."""

from __future__ import annotations

import grpc
import structlog
from prometheus_client import CollectorRegistry

from libs.bus import BusError
from libs.pki import PkiError, parse_key_type
from libs.proto_gen.istio.v1.auth import ca_pb2_grpc
from libs.runtime import Backoff, FatalServiceError, MonitoringServer, Readiness, Supervisor
from services.citadel.api import CertificateService, CsrHandler
from services.citadel.auth import BootstrapTokenAuthenticator, FileTokenKeyStore
from services.citadel.ca import CacertsStore, CaStore, CertificateAuthority, FileCaStore, IssuancePolicy, utc_now
from services.citadel.errors import CaLoadError
from services.citadel.metrics import CitadelMetrics
from services.citadel.serving_cert import ServingCredentials
from services.citadel.settings import CitadelSettings
from services.citadel.trust_bundle import publish_trust_bundle

log = structlog.get_logger(__name__)


def load_ca(settings: CitadelSettings) -> CertificateAuthority:
    """The CA from the plugged-in cacerts, or citadel's own root (made on first start)."""
    store: CaStore = CacertsStore(settings.cacerts_dir) if settings.cacerts_dir else FileCaStore(settings.state_dir)
    try:
        key_type = parse_key_type(settings.ca_key_type)
        policy = IssuancePolicy(trust_domain=settings.trust_domain, default_ttl_s=settings.workload_cert_ttl_s,
                                max_ttl_s=settings.max_workload_cert_ttl_s, clock_skew_s=settings.cert_backdate_s)
        if policy.default_ttl_s > policy.max_ttl_s:
            raise CaLoadError(f"workload_cert_ttl_s {policy.default_ttl_s} exceeds max_workload_cert_ttl_s "
                              f"{policy.max_ttl_s}")
        ca = CertificateAuthority(store.create(key_type, settings.trust_domain, utc_now()), policy)
        # Fail now, not on the first request, if the trust domain cannot make SPIFFE ids.
        ca.identity("default", "default")
    except PkiError as exc:
        raise CaLoadError(str(exc)) from exc
    log.info("CA loaded", source=store.description, root=ca.bundle.root.subject.rfc4514_string(),
             root_expires=ca.bundle.root.not_valid_after_utc.isoformat(), trusted_roots=len(ca.bundle.trusted_roots),
             trust_domain=settings.trust_domain)
    return ca


async def run(settings: CitadelSettings) -> None:
    supervisor = Supervisor("citadel", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    metrics = CitadelMetrics(registry)
    readiness = Readiness()
    readiness.require("ca-loaded", "grpc-serving")
    monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                  readiness=readiness, registry=registry)
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    try:
        ca = load_ca(settings)
        authenticator = BootstrapTokenAuthenticator(FileTokenKeyStore(settings.state_dir).load_or_create())
        serving = ServingCredentials(ca, settings.serving_hosts, settings.serving_cert_ttl_s)
    except (CaLoadError, ValueError) as exc:
        await supervisor.shutdown()
        raise FatalServiceError("load-ca", exc) from exc
    metrics.root_expiry.set(ca.bundle.root.not_valid_after_utc.timestamp())
    readiness.mark("ca-loaded")

    server = grpc.aio.server(options=[("grpc.keepalive_time_ms", 30_000)])
    ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(CertificateService(CsrHandler(ca, authenticator),
                                                                                 metrics), server)
    port = server.add_secure_port(f"{settings.grpc_address}:{settings.grpc_port}", serving.credentials())
    await server.start()

    async def stop_grpc() -> None:
        await server.stop(grace=1.0)

    supervisor.on_stop("grpc", stop_grpc)
    readiness.mark("grpc-serving")
    log.info("CSR API serving", address=settings.grpc_address, port=port, tls_hosts=list(settings.serving_hosts))

    async def publish() -> None:
        try:
            await publish_trust_bundle(settings.nats_url, settings.trust_domain, ca.trust_bundle_pem(), metrics)
        except BusError as exc:
            # Retried by the supervisor; CSRs are served meanwhile.
            raise RuntimeError(f"publishing the trust bundle failed: {exc}") from exc

    supervisor.start("trust-bundle", publish, restart=Backoff(initial_s=0.5, maximum_s=10.0))
    await supervisor.wait()
