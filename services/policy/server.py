"""Policy's run(): Istio 1.0/1.1's istio-policy (Mixer's check and quota side), for Envoy.

Flows:
- Envoy's ext_authz filter asks over HTTP/1.1 (http_checks; pilot's choice where it can) or
  `Authorization/Check` over gRPC (api) -> the request's attributes, joined with the
  directory (attributes) -> the check cache, else the rules (engine) and their denier and
  listchecker handlers (checks) -> allowed, or the handler's status as HTTP;
- Envoy's rate-limit filter asks `RateLimitService/ShouldRateLimit` with the descriptors
  pilot configured -> the quota's rules and their memquota (this replica's memory) or
  redisquota (shared Redis) handlers -> OK or OVER_LIMIT (429); in any other domain, the
  descriptors are judged by envoyproxy/ratelimit-style limits (the `ratelimit-config`
  ConfigMap), counted in memory or in `--ratelimit-redis-url`'s Redis;
- mesh-config (`config.istio.io` rules, handlers, instances, quota specs; rate-limit
  config; ServiceEntries and WorkloadEntries) and mesh-workloads from NATS -> the engine,
  the limits and the directory, rebuilt on every change, adapters kept while their params
  hold.
Stateless apart from quota counters: replicas answer alike, and redisquota's counts are
shared.  The same Check answers AuthorizationPolicy's CUSTOM action (an
envoyExtAuthzGrpc provider pointing here).
"""

from __future__ import annotations

import asyncio
import functools

import grpc
import httpx
import structlog
from prometheus_client import CollectorRegistry, Gauge

from libs.bus import Bus, BusSettings, track_connection
from libs.config import RATELIMIT_CONFIG_KIND, Resource
from libs.config.directory import Directory
from libs.config.mesh_view import mesh_view
from libs.config.ratelimit import RateLimits, combine
from libs.mixer import build as build_mixer
from libs.runtime import Backoff, MonitoringServer, Readiness, Supervisor, serve_grpc
from services.policy.adapters.listchecker import ListChecker
from services.policy.adapters.quota import Counts, MemoryCounts, RedisCounts, redis_client
from services.policy.api import AuthorizationService, RateLimitService, add_to_server
from services.policy.cache import CheckCache
from services.policy.checks import Checks
from services.policy.engine import Adapters, Decision, Engine
from services.policy.http_checks import answer_from, serve_http_checks
from services.policy.settings import PolicySettings

log = structlog.get_logger(__name__)


class Policy:
    def __init__(self, settings: PolicySettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.readiness = Readiness()
        self.readiness.require("nats-connected")
        self.adapters = Adapters()
        self.engine = Engine(build_mixer([]), self.adapters)
        self.directory = Directory()
        self.cache: CheckCache[Decision] = CheckCache(max_entries=settings.check_cache_entries)
        self.checks = Checks(lambda: self.engine, self.cache, registry)
        self.authorization = AuthorizationService(self.checks, lambda: self.directory)
        self.ratelimits = RateLimits()
        counts: Counts = MemoryCounts()
        if settings.ratelimit_redis_url:
            counts = RedisCounts(redis_client(settings.ratelimit_redis_url, 10, self.adapters.redis_clients))
        self.rate_limits = RateLimitService(lambda: self.engine, lambda: self.directory, lambda: self.ratelimits,
                                            counts, registry)
        self.view = mesh_view(settings.registries, settings.kube_config, settings.cluster_domain, self.readiness,
                              self.refresh)
        self._supervisor: Supervisor | None = None
        self._http = httpx.AsyncClient()
        self._fetches: dict[int, tuple[ListChecker, asyncio.Task[None]]] = {}
        self._ratelimit_problems = Gauge("policy_ratelimit_config_problems", "Rate-limit configurations left out "
                                         "(unreadable, or a domain defined twice)", registry=registry)
        self._revision = Gauge("policy_config_revision", "The mesh-config revision the rules in force were built from",
                               registry=registry)

    def refresh(self, resources: list[Resource], directory: Directory) -> None:
        self.directory = directory
        mixer = build_mixer(resources, self.settings.config_namespace)
        for problem in mixer.problems:
            log.warning("policy config problem", problem=problem)
        self.adapters.update(mixer, self._resolve)
        self.ratelimits, problems = combine(
            (f"{r.kind} {r.namespace}/{r.name} data.{entry}", document)
            for r in resources if r.kind == RATELIMIT_CONFIG_KIND
            for entry, document in sorted((r.spec.get("configs") or {}).items()))
        for problem in problems:
            log.warning("rate-limit config problem", problem=problem)
        self._ratelimit_problems.set(len(problems))
        self._keep_lists_fetched()
        self.engine = Engine(mixer, self.adapters)
        # Decisions were made under the old rules.
        self.cache.clear()
        self._revision.set(self.view.revision)

    def _resolve(self, address: str, namespace: str) -> str:
        """`host:port` through the registry, as Kubernetes DNS would answer a pod in
        `namespace` (`redis-release-master:6379` in istio-system is the ServiceEntry
        `redis-release-master.istio-system.svc.cluster.local`); unknown hosts as written."""
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            return address
        for candidate in (host, f"{host}.{namespace}.svc.{self.settings.cluster_domain}"):
            found = self.directory.endpoint(candidate, int(port))
            if found is not None:
                return f"{found[0]}:{found[1]}"
        return address

    def _keep_lists_fetched(self) -> None:
        """One refresh task per provider-backed list checker; a replaced checker's task ends."""
        assert self._supervisor is not None
        current = {id(checker): checker for checker in self.adapters.fetching.values()}
        for key in [k for k in self._fetches if k not in current]:
            self._fetches.pop(key)[1].cancel()
        for key, checker in current.items():
            if key not in self._fetches:
                # The checker is kept with its task so its id is not reused while the task runs.
                task = self._supervisor.start(f"list-{key}", functools.partial(checker.refresh_forever, self._http),
                                              restart=Backoff())
                self._fetches[key] = (checker, task)

    async def run(self, supervisor: Supervisor, bus: Bus) -> None:
        self._supervisor = supervisor
        supervisor.on_stop("list-fetch-client", self._http.aclose)
        await self.view.start(supervisor, bus)


async def run(settings: PolicySettings) -> None:
    supervisor = Supervisor("policy", grace_s=settings.shutdown_grace_s)
    supervisor.install_signal_handlers()
    registry = CollectorRegistry()
    policy = Policy(settings, registry)
    monitoring = MonitoringServer(host=settings.monitoring_address, port=settings.monitoring_port,
                                  readiness=policy.readiness, registry=registry)
    supervisor.start("monitoring", monitoring.serve)
    supervisor.on_stop("monitoring", monitoring.stop)
    bus = await Bus.connect(BusSettings(url=settings.nats_url, connect_timeout_s=None), name="policy")
    policy.readiness.mark("nats-connected")
    track_connection(bus, policy.readiness, grace_s=settings.nats_grace_s)
    try:
        server = grpc.aio.server(options=[("grpc.so_reuseport", int(settings.grpc_reuse_port))])
        add_to_server(server, policy.authorization, policy.rate_limits)
        await serve_grpc(supervisor, server, settings.grpc_address, settings.grpc_port,
                         name="check and rate-limit APIs")
        if settings.http_check_port >= 0:
            await serve_http_checks(supervisor, answer_from(policy.checks, lambda: policy.directory),
                                    settings.grpc_address, settings.http_check_port,
                                    reuse_port=settings.grpc_reuse_port)
        await policy.run(supervisor, bus)
        await supervisor.wait()
    finally:
        await bus.close()
