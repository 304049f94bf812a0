"""Citadel's run(): load the CA, serve the CSR API over TLS, publish the trust bundle, and
rotate citadel's own root (`services.citadel.rotation`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import grpc
import structlog
from prometheus_client import CollectorRegistry

from libs.kube import KubeClient, KubeConfigError
from libs.pki import KeyType, PkiError, parse_key_type
from libs.proto_gen.istio.v1.auth import ca_pb2_grpc
from libs.runtime import Backoff, FatalServiceError, MonitoringServer, Readiness, Supervisor
from services.citadel.api import CertificateService, CsrHandler
from services.citadel.auth import (
    BootstrapTokenAuthenticator,
    CombinedAuthenticator,
    FileTokenKeyStore,
    KubeTokenAuthenticator,
    TokenAuthenticator,
)
from services.citadel.ca import (
    CacertsStore,
    CaStore,
    CertificateAuthority,
    FileCaStore,
    IssuancePolicy,
    KubeSecretCaStore,
    parse_dns_grants,
    utc_now,
)
from services.citadel.ca.roots import Phase, RootSet
from services.citadel.errors import CaLoadError
from services.citadel.metrics import CitadelMetrics
from services.citadel.root_cert import RootCertPublisher, parse_webhook_configurations
from services.citadel.rotation import RootRotator, Rotatable, RotationPolicy
from services.citadel.rotation.admin import router as rotation_router
from services.citadel.rotation.rotator import PHASE_VALUES
from services.citadel.serving_cert import ServingCredentials
from services.citadel.settings import CitadelSettings

log = structlog.get_logger(__name__)


CA_STORES = ("file", "kube")
AUTHENTICATORS = ("bootstrap", "kube")


def settings_problem(settings: CitadelSettings) -> str | None:
    """What is inconsistent in the Kubernetes-related settings, or None."""
    kube = settings.kubeconfig is not None or settings.kube_in_cluster
    if settings.ca_store not in CA_STORES:
        return f"ca_store {settings.ca_store!r} is not one of {', '.join(CA_STORES)}"
    unknown = [name for name in settings.authenticators if name not in AUTHENTICATORS]
    if unknown or not settings.authenticators:
        return f"authenticators {list(settings.authenticators)} must be some of {', '.join(AUTHENTICATORS)}"
    if settings.ca_store == "kube" and settings.cacerts_dir is not None:
        return "ca_store=kube and cacerts_dir both say where the CA is; choose one"
    try:
        parse_webhook_configurations(settings.webhook_ca_bundles)
    except ValueError as exc:
        return str(exc)
    needs_kube = [what for what, used in (("ca_store=kube", settings.ca_store == "kube"),
                                           ("authenticators=kube", "kube" in settings.authenticators),
                                           ("root_cert_configmaps", settings.root_cert_configmaps),
                                           ("webhook_ca_bundles", bool(settings.webhook_ca_bundles))) if used]
    if needs_kube and not kube:
        return f"{' and '.join(needs_kube)} need kubeconfig or kube_in_cluster"
    if "kube" in settings.authenticators and not settings.token_audiences:
        # An empty list would make TokenReview accept a token minted for any audience.
        return "token_audiences is empty; Kubernetes tokens need an audience (Istio: istio-ca)"
    return None


def ca_store(settings: CitadelSettings, kube: KubeClient | None) -> CaStore:
    if settings.cacerts_dir is not None:
        return CacertsStore(settings.cacerts_dir)
    if settings.ca_store == "kube":
        assert kube is not None, "settings_problem() lets ca_store=kube through only with a client"
        return KubeSecretCaStore(kube, settings.ca_namespace, settings.ca_secret_name)
    return FileCaStore(settings.state_dir)


def authenticator(settings: CitadelSettings, kube: KubeClient | None) -> TokenAuthenticator:
    bootstrap = (BootstrapTokenAuthenticator(FileTokenKeyStore(settings.state_dir).load_or_create())
                 if "bootstrap" in settings.authenticators else None)
    if "kube" not in settings.authenticators:
        assert bootstrap is not None
        return bootstrap
    assert kube is not None, "settings_problem() lets authenticators=kube through only with a client"
    reviewed = KubeTokenAuthenticator(kube, settings.token_audiences)
    return reviewed if bootstrap is None else CombinedAuthenticator(bootstrap, reviewed)


@dataclass
class LoadedCa:
    ca: CertificateAuthority
    policy: IssuancePolicy
    key_type: KeyType
    # Citadel's own root and the store that keeps its rotation; None for a plugged-in CA.
    roots: RootSet | None
    store: CaStore


async def load_ca(settings: CitadelSettings, kube: KubeClient | None = None) -> LoadedCa:
    """The CA from the plugged-in cacerts, or citadel's own root (made on first start)."""
    store = ca_store(settings, kube)
    try:
        key_type = parse_key_type(settings.ca_key_type)
        policy = IssuancePolicy(trust_domain=settings.trust_domain, default_ttl_s=settings.workload_cert_ttl_s,
                                max_ttl_s=settings.max_workload_cert_ttl_s, clock_skew_s=settings.cert_backdate_s,
                                dns_grants=parse_dns_grants(settings.dns_grants))
        if policy.default_ttl_s > policy.max_ttl_s:
            raise CaLoadError(f"workload_cert_ttl_s {policy.default_ttl_s} exceeds max_workload_cert_ttl_s "
                              f"{policy.max_ttl_s}")
        roots: RootSet | None = None
        if isinstance(store, FileCaStore | KubeSecretCaStore):
            roots = await store.create_roots(key_type, settings.trust_domain, utc_now(),
                                             ttl=dt.timedelta(seconds=settings.root_cert_ttl_s))
            ca = CertificateAuthority(roots.ca_bundle(), policy)
        else:
            ca = CertificateAuthority(await store.create(key_type, settings.trust_domain, utc_now()), policy)
        # Fail now, not on the first request, if the trust domain cannot make SPIFFE ids.
        ca.identity("default", "default")
    except PkiError as exc:
        raise CaLoadError(str(exc)) from exc
    log.info("CA loaded", source=store.description, root=ca.bundle.root.subject.rfc4514_string(),
             root_expires=ca.bundle.root.not_valid_after_utc.isoformat(), trusted_roots=len(ca.bundle.trusted_roots),
             trust_domain=settings.trust_domain, rotation_phase=str(roots.phase) if roots else None)
    return LoadedCa(ca, policy, key_type, roots, store)


def _closer(kube: KubeClient) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        kube.close()

    return close


async def run(settings: CitadelSettings, environ: Mapping[str, str] | None = None) -> None:
    """`environ` is where the in-cluster configuration finds the API server (KUBERNETES_SERVICE_HOST)."""
    supervisor = Supervisor("citadel", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    metrics = CitadelMetrics(registry)
    readiness = Readiness()
    readiness.require("ca-loaded", "grpc-serving")
    rotators: list[RootRotator] = []
    monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                  readiness=readiness, registry=registry,
                                  routers=(rotation_router(lambda: rotators[0] if rotators else None),))
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    kube: KubeClient | None = None
    try:
        problem = settings_problem(settings)
        if problem:
            raise ValueError(problem)
        if settings.kubeconfig is not None or settings.kube_in_cluster:
            kube = KubeClient.connect(settings.kubeconfig, environ=environ or {}, context=settings.kube_context,
                                      request_timeout_s=settings.kube_request_timeout_s)
            # Registered before the gRPC server's stop, so it runs after it: no review is in flight.
            supervisor.on_stop("kube", _closer(kube))
        loaded = await load_ca(settings, kube)
        rotation_policy = RotationPolicy(auto_fraction=settings.root_rotation_auto_fraction,
                                         min_phase_s=settings.root_rotation_min_phase_s)
        ca = loaded.ca
        token_authenticator = authenticator(settings, kube)
        serving = ServingCredentials(ca, settings.serving_hosts, settings.serving_cert_ttl_s)
    except (CaLoadError, KubeConfigError, ValueError) as exc:
        await supervisor.shutdown()
        raise FatalServiceError("load-ca", exc) from exc
    metrics.root_expiry.set(ca.bundle.root.not_valid_after_utc.timestamp())
    metrics.rotation_phase.set(PHASE_VALUES[loaded.roots.phase if loaded.roots else Phase.STABLE])
    readiness.mark("ca-loaded")
    handler = CsrHandler(ca, token_authenticator)

    def install(roots: RootSet, switched: bool) -> None:
        """A rotation step's roots, in memory: what the CSR API signs with and trusts."""
        current = CertificateAuthority(roots.ca_bundle(), loaded.policy)
        handler.ca = current
        serving.replace_ca(current, renew=switched)
        metrics.root_expiry.set(current.bundle.root.not_valid_after_utc.timestamp())

    server = grpc.aio.server(options=[("grpc.keepalive_time_ms", 30_000)])
    ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(CertificateService(handler, metrics), server)
    port = server.add_secure_port(f"{settings.grpc_address}:{settings.grpc_port}", serving.credentials())
    await server.start()

    async def stop_grpc() -> None:
        await server.stop(grace=1.0)

    supervisor.on_stop("grpc", stop_grpc)
    readiness.mark("grpc-serving")
    log.info("CSR API serving", address=settings.grpc_address, port=port, tls_hosts=list(settings.serving_hosts),
             authenticators=list(settings.authenticators))

    publisher = None
    if kube is not None and (settings.root_cert_configmaps or settings.webhook_ca_bundles):
        publisher = RootCertPublisher(kube, ca.trust_bundle_pem(), configmaps=settings.root_cert_configmaps,
                                      webhooks=parse_webhook_configurations(settings.webhook_ca_bundles))
        for name, loop in publisher.tasks():
            supervisor.start(name, loop, restart=Backoff(initial_s=0.5, maximum_s=30.0))
    store, rotatable = loaded.store, None
    if loaded.roots is not None and isinstance(store, FileCaStore | KubeSecretCaStore):
        rotatable = Rotatable(store, loaded.roots, loaded.key_type, dt.timedelta(seconds=settings.root_cert_ttl_s),
                              install)
    rotator = RootRotator(settings.nats_url, settings.trust_domain, rotation_policy, metrics, rotatable,
                          fixed_bundle_pem=ca.trust_bundle_pem(),
                          on_published=publisher.publish if publisher is not None else None)
    rotators.append(rotator)
    # Retried by the supervisor while NATS is away; CSRs are served meanwhile.
    supervisor.start("root-rotation", rotator.run, restart=Backoff(initial_s=0.5, maximum_s=10.0))
    await supervisor.wait()
