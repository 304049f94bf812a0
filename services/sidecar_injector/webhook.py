"""The admission edge: AdmissionReview (admission.k8s.io/v1) in, a JSON patch out.

`review()` is pure.  Every way injection can fail is answered here, once, by the table
below: the pod is admitted only injected or, when injection was not wanted, untouched;
when injection fails it is refused with a status naming the field (`allowed: false`),
never admitted half-patched.  A body that is not an AdmissionReview gets HTTP 400.
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter

from libs.inject import (
    InconsistentPatch,
    InjectionConfig,
    InvalidConfig,
    InvalidPod,
    MeshSettings,
    inject,
    pod_name,
    workload_of_pod,
)
from services.sidecar_injector.errors import BadReview, ConfigNotLoaded

log = structlog.get_logger(__name__)

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
# (admission status code, reason) for each way injection fails.
ADMISSION_STATUS: dict[type[Exception], tuple[int, str]] = {
    InvalidPod: (400, "BadRequest"),
    InvalidConfig: (500, "InternalError"),
    InconsistentPatch: (500, "InternalError"),
    ConfigNotLoaded: (503, "ServiceUnavailable"),
}
FAILURES = tuple(ADMISSION_STATUS)

Configs = Callable[[], tuple[InjectionConfig, MeshSettings]]


class Outcome(enum.StrEnum):
    INJECTED = "success"
    SKIPPED = "skip"
    FAILED = "failure"
    # Not a pod being created: the webhook's rules should not have sent it.
    IGNORED = "ignored"


def _request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
        raise BadReview("the body is not an AdmissionReview")
    if body.get("apiVersion") not in API_VERSIONS:
        raise BadReview(f"apiVersion {body.get('apiVersion')!r} is not one of {', '.join(API_VERSIONS)}")
    request = body.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise BadReview("the AdmissionReview has no request with a uid")
    return request


def _is_pod_create(request: dict[str, Any]) -> bool:
    kind = request.get("kind") or {}
    return (kind.get("group", "") == "" and kind.get("kind") == "Pod"
            and request.get("operation", "CREATE") == "CREATE")


def _failure(exc: Exception) -> dict[str, Any]:
    code, reason = next(status for cls, status in ADMISSION_STATUS.items() if isinstance(exc, cls))
    return {"code": code, "reason": reason, "message": f"sidecar injection failed: {exc}"}


def review(body: Any, configs: Configs) -> tuple[dict[str, Any], Outcome]:
    """The AdmissionReview response to `body`, and what became of the pod."""
    request = _request(body)
    response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    answer = {"apiVersion": body["apiVersion"], "kind": "AdmissionReview", "response": response}
    pod = request.get("object")
    if not _is_pod_create(request) or not isinstance(pod, dict):
        return answer, Outcome.IGNORED
    metadata = pod.get("metadata") or {}
    namespace = str(request.get("namespace") or metadata.get("namespace") or "default")
    logger = log.bind(uid=request["uid"], namespace=namespace, pod=pod_name(metadata))
    try:
        config, mesh = configs()
        injection = inject(pod, namespace, workload_of_pod(metadata), config, mesh)
    except FAILURES as exc:
        logger.warning("injection refused", error=str(exc), error_type=type(exc).__name__)
        response.update(allowed=False, status=_failure(exc))
        return answer, Outcome.FAILED
    if not injection.decision.inject:
        logger.debug("injection skipped", reason=injection.decision.reason)
        return answer, Outcome.SKIPPED
    response["patchType"] = "JSONPatch"
    response["patch"] = base64.b64encode(json.dumps(injection.patch).encode()).decode()
    logger.info("sidecar injected", reason=injection.decision.reason, operations=len(injection.patch))
    return answer, Outcome.INJECTED


class WebhookMetrics:
    """Istio's sidecar_injection_* counters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("sidecar_injection_requests", "AdmissionReviews received", registry=registry)
        self.outcomes = {
            Outcome.INJECTED: Counter("sidecar_injection_success", "pods injected", registry=registry),
            Outcome.SKIPPED: Counter("sidecar_injection_skip", "pods the decision left alone", registry=registry),
            Outcome.FAILED: Counter("sidecar_injection_failure", "pods refused because injection failed",
                                    registry=registry),
        }


def router(configs: Configs, metrics: WebhookMetrics) -> APIRouter:
    api = APIRouter()

    async def handle(request: Request) -> JSONResponse:
        metrics.requests.inc()
        try:
            answer, outcome = review(json.loads(await request.body()), configs)
        except (ValueError, BadReview) as exc:
            return JSONResponse({"error": f"expected an AdmissionReview: {exc}"}, status_code=400)
        if outcome in metrics.outcomes:
            metrics.outcomes[outcome].inc()
        return JSONResponse(answer)

    api.add_api_route("/inject", handle, methods=["POST"])
    api.add_api_route("/inject/", handle, methods=["POST"])
    return api
