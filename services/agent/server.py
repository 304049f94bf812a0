"""The agent's run(): bootstrap, the SDS server (credentials, certificate files, and the
workload identity when enabled), Envoy under supervision, readiness from Envoy's admin, and
the app's probes (/app-health/*) on the monitoring port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import httpx
import structlog
from prometheus_client import CollectorRegistry, Gauge

from libs.runtime import Backoff, FatalServiceError, MonitoringServer, Readiness, Supervisor
from services.agent.app_health import AppHealth
from services.agent.app_probers import parse_app_probers
from services.agent.app_probing import AppProber, destination
from services.agent.bootstrap import bootstrap_json
from services.agent.envoy_process import EnvoyProcess
from services.agent.errors import ConfigurationError
from services.agent.node_agent import NodeAgent
from services.agent.registration import Registrar
from services.agent.sds_setup import Sds, build_sds, check_settings
from services.agent.settings import AgentSettings

log = structlog.get_logger(__name__)


async def watch_envoy_ready(settings: AgentSettings, readiness: Readiness, live: Gauge,
                            interval_s: float = 0.5) -> None:
    """Mirror Envoy's admin /ready (LIVE once it has its initial config) into /readyz."""
    url = f"http://{settings.admin_address}:{settings.admin_port}/ready"
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                response = await client.get(url)
                ready = response.status_code == 200 and response.text.strip() == "LIVE"
            except httpx.HTTPError:
                ready = False
            readiness.mark("envoy-live", ready)
            live.set(1 if ready else 0)
            await asyncio.sleep(interval_s)


async def root_cert_written(settings: AgentSettings, interval_s: float = 0.1) -> None:
    """Wait (up to `citadel_root_wait_s`) for citadel's root file: started beside citadel, as
    in the local mesh, the agent can be up before citadel has written it.  Still missing
    after that, configuration fails and names the file."""
    path = settings.citadel_root_cert
    if not settings.identity_enabled or path is None or path.exists():
        return
    log.info("waiting for citadel's root certificate", path=str(path), up_to_s=settings.citadel_root_wait_s)
    deadline = time.monotonic() + settings.citadel_root_wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(interval_s)
        if path.exists():
            log.info("citadel's root certificate is there", path=str(path))
            return


async def run(settings: AgentSettings, environ: Mapping[str, str] | None = None) -> None:
    supervisor = Supervisor("agent", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    live = Gauge("agent_envoy_live", "1 when Envoy reports LIVE on its admin /ready", registry=registry)
    readiness = Readiness()
    readiness.require("envoy-live")
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    if settings.sds_enabled:
        # The SDS socket in here hands out private keys.
        state_dir.chmod(0o700)
    await root_cert_written(settings)
    try:
        check_settings(settings)
        app_probes = parse_app_probers(settings.kube_app_probers)
        config = bootstrap_json(settings)
        sds: Sds | None = build_sds(settings, registry, environ or {}) if settings.sds_enabled else None
        node_agent = (NodeAgent(settings, registry, readiness, sds.secrets)
                      if sds is not None and settings.identity_enabled else None)
    except ConfigurationError as exc:
        raise FatalServiceError("configure", exc) from exc
    bootstrap = state_dir / "envoy-bootstrap.json"
    bootstrap.write_text(config)
    log.info("bootstrap written", path=str(bootstrap), node=settings.node_id, pilot=settings.pilot_address)
    envoy = EnvoyProcess(bootstrap, log_level=settings.envoy_log_level, concurrency=settings.envoy_concurrency,
                         grace_s=settings.shutdown_grace_s, log_path=state_dir / "envoy.log",
                         drain_time_s=settings.drain_duration_s)
    app_health = (AppHealth(app_probes, AppProber(destination(settings.instance_ip, settings.app_probe_localhost),
                                                  settings.monitoring_port), registry)
                  if app_probes else None)
    monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                  readiness=readiness, registry=registry, app=app_health)
    if sds is not None:
        try:
            await sds.start(supervisor)
        except ConfigurationError as exc:
            await supervisor.shutdown()
            raise FatalServiceError("sds", exc) from exc
    # Envoy first: its boot is the longest step, and the CSR to citadel overlaps it.
    supervisor.start("envoy", envoy.run, restart=Backoff(initial_s=0.2, maximum_s=10.0))
    if node_agent is not None:
        await node_agent.start(supervisor)
    if app_health is not None:
        log.info("serving app probes", probes=sorted(app_probes))
        supervisor.on_stop("app-probes", app_health.aclose)
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    supervisor.on_stop("envoy", envoy.stop)
    supervisor.start("envoy-ready", lambda: watch_envoy_ready(settings, readiness, live))
    if settings.registry_nats_url:
        registrar = Registrar(settings)
        supervisor.start("registration", registrar.run, restart=Backoff())
        supervisor.on_stop("registration", registrar.deregister)
    await supervisor.wait()
