"""The two gRPC APIs Envoy calls, and where their answers map to wire codes (once, here):
`envoy.service.auth.v3.Authorization/Check` (checks) and
`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` (quotas)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import structlog
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import status_pb2
from prometheus_client import CollectorRegistry, Counter

from libs.config.directory import Directory
from libs.config.ratelimit import RateLimits
from libs.mixer import CHARGE_KEY, QUOTA_DOMAIN, QUOTA_KEY
from services.policy import attributes
from services.policy.adapters.quota import Counts, Limit, QuotaUnavailable
from services.policy.checks import Checks
from services.policy.engine import Engine

log = structlog.get_logger(__name__)
Unit = rls_pb2.RateLimitResponse.RateLimit.Unit


class AuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self, checks: Checks, directory: Callable[[], Directory]) -> None:
        self._checks = checks
        self._directory = directory

    async def Check(self, request: external_auth_pb2.CheckRequest,
                    context: grpc.aio.ServicerContext) -> external_auth_pb2.CheckResponse:
        decision = self._checks.decide(attributes.from_check(request, self._directory()))
        if decision.ok:
            return external_auth_pb2.CheckResponse(status=status_pb2.Status(code=0),
                                                   ok_response=external_auth_pb2.OkHttpResponse())
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=decision.status.code, message=decision.status.message),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=decision.status.http),
                body=decision.status.body(decision.handler)))


class RateLimitService(rls_pb2_grpc.RateLimitServiceServicer):
    """Mixer quotas (pilot's domain) and envoyproxy/ratelimit-style limits (any other)."""

    def __init__(self, engine: Callable[[], Engine], directory: Callable[[], Directory],
                 limits: Callable[[], RateLimits], counts: Counts, registry: CollectorRegistry) -> None:
        self._engine = engine
        self._directory = directory
        self._limits = limits
        self._counts = counts
        self._decisions = Counter("policy_quota_decisions", "Quota and rate-limit decisions, by domain and outcome",
                                  ["domain", "outcome"], registry=registry)

    async def ShouldRateLimit(self, request: rls_pb2.RateLimitRequest,
                              context: grpc.aio.ServicerContext) -> rls_pb2.RateLimitResponse:
        response = rls_pb2.RateLimitResponse(overall_code=rls_pb2.RateLimitResponse.OK)
        try:
            for descriptor in request.descriptors:
                entries = [(entry.key, entry.value) for entry in descriptor.entries]
                status = response.statuses.add(code=rls_pb2.RateLimitResponse.OK)
                if request.domain == QUOTA_DOMAIN:
                    allowed = await self._quota(dict(entries), request.hits_addend)
                    outcome = "allowed" if allowed else "over_limit"
                else:
                    outcome = await self._rate_limit(request.domain, entries, request.hits_addend or 1, status)
                self._decisions.labels(request.domain, outcome).inc()
                if outcome == "over_limit":
                    status.code = rls_pb2.RateLimitResponse.OVER_LIMIT
                    response.overall_code = rls_pb2.RateLimitResponse.OVER_LIMIT
        except QuotaUnavailable as exc:
            # Envoy's rate-limit filter applies its failure policy (failure_mode_deny) to this.
            self._decisions.labels(request.domain, "unavailable").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return response

    async def _quota(self, entries: dict[str, str], hits: int) -> bool:
        quota = entries.get(QUOTA_KEY)
        if not quota:
            return True
        charge = hits or int(entries.get(CHARGE_KEY, "1") or 1)
        return await self._engine().allocate(attributes.from_descriptor(entries, self._directory()), quota, charge)

    async def _rate_limit(self, domain: str, entries: list[tuple[str, str]], hits: int,
                          status: rls_pb2.RateLimitResponse.DescriptorStatus) -> str:
        """allowed, over_limit, or shadow_over_limit (a shadow-mode limit counts, never limits)."""
        found = self._limits().find(domain, entries)
        if found.limit is None:
            return "allowed"
        status.current_limit.requests_per_unit = found.limit.requests_per_unit
        status.current_limit.unit = Unit.Value(found.limit.unit.upper())
        limit = Limit(found.limit.requests_per_unit, float(found.limit.unit_s))
        if await self._counts.take(f"ratelimit:{found.key}", hits, limit):
            return "allowed"
        return "shadow_over_limit" if found.shadow else "over_limit"




def add_to_server(server: grpc.aio.Server, authorization: AuthorizationService,
                  rate_limits: RateLimitService) -> None:
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(authorization, server)
    rls_pb2_grpc.add_RateLimitServiceServicer_to_server(rate_limits, server)
