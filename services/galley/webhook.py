"""Kubernetes validating admission webhook (admission.k8s.io/v1) over HTTPS.

It denies with exactly the lines `mizzenctl validate` prints, and allows with warnings.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from libs.config import Origin, parse_documents
from libs.config.report import report
from services.galley.errors import BadAdmissionReview


def review(body: dict[str, Any]) -> dict[str, Any]:
    """An AdmissionReview request in, its response out (pure, for tests and the route)."""
    request = body.get("request") or {}
    uid = request.get("uid", "")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    operation = request.get("operation", "")
    obj = request.get("object")
    if operation == "DELETE" or obj is None:
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
    if isinstance(obj, dict):
        obj.setdefault("metadata", {}).setdefault("namespace", request.get("namespace") or "default")
    result = parse_documents([(Origin("admission"), obj)])
    summary = report(result, with_origin=False)
    if not summary.ok:
        response["allowed"] = False
        response["status"] = {"code": 400, "reason": "Invalid", "message": "\n".join(summary.errors)}
    warnings = summary.warnings + summary.unsupported
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


# Every path validates every kind galley serves: /validate, and Istio 1.1 galley's two
# (its ValidatingWebhookConfiguration calls /admitpilot and /admitmixer).
PATHS = ("/validate", "/admitpilot", "/admitmixer")


def router() -> APIRouter:
    api = APIRouter()

    async def validate(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError as exc:
            raise BadAdmissionReview("body is not an AdmissionReview JSON document") from exc
        if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
            raise BadAdmissionReview("expected kind AdmissionReview")
        return JSONResponse(review(body))

    for path in PATHS:
        api.add_api_route(path, validate, methods=["POST"])
    return api
