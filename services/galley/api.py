"""Galley's HTTP API for `mizzenctl apply -f`, `delete -f` and `get`.

Bodies are YAML (one or many documents); every document is validated with the same
rules as every other source.  Valid resources are stored (kubectl's semantics: each
document on its own), invalid ones are reported with resource, field and reason, and the
response says what happened to each.  Istio's analyzers look at the valid ones too (see
`analysis`): what they find comes back as warnings, in the body and as HTTP `Warning`
headers, and never refuses anything.  A bearer token guards the API when one is set.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders

from libs.bus import BusError, config_key
from libs.config import Resource, kind_by_name, parse_text
from libs.config.report import report
from services.galley.analysis import ApplyAnalysis
from services.galley.errors import (
    BadAdmissionReview,
    BodyTooLarge,
    StoreUnavailable,
    Unauthorized,
    UnknownKind,
)
from services.galley.sources import Source, merge
from services.galley.sources.applied import AppliedSource

MAX_BODY_BYTES = 4 * 1024 * 1024
# Galley's refusals, mapped here once for the API and the webhook (see services/galley/errors.py).
HTTP_STATUS: dict[type[Exception], int] = {
    BadAdmissionReview: 400,
    Unauthorized: 401,
    UnknownKind: 404,
    BodyTooLarge: 413,
    StoreUnavailable: 503,
}
# Headers beyond this many bytes of warnings would trouble proxies and clients alike.
MAX_WARNING_HEADER_BYTES = 8 * 1024


def _authenticate(token: str | None) -> Any:
    async def check(authorization: str | None = Header(default=None)) -> None:
        if not token:
            return
        presented = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise Unauthorized()

    return check


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge(MAX_BODY_BYTES)
    return body


def warning_headers(warnings: list[str]) -> Headers:
    """RFC 7234 `Warning: 299 - "<text>"` headers, one per warning, as the Kubernetes API
    server sends them (and kubectl shows them); ASCII only, and at most
    `MAX_WARNING_HEADER_BYTES` of them, the rest counted in a last one."""
    headers = MutableHeaders()
    used = 0
    for i, warning in enumerate(warnings):
        text = " ".join(warning.split()).encode("ascii", "backslashreplace").decode()
        value = '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if used + len(value) > MAX_WARNING_HEADER_BYTES:
            headers.append("Warning", f'299 - "{len(warnings) - i} more warning(s) in the response body"')
            break
        headers.append("Warning", value)
        used += len(value)
    return headers


def router(applied: AppliedSource, sources: list[Source], *, token: str | None,
           default_namespace: str = "default", analysis: ApplyAnalysis | None = None,
           store_connected: Callable[[], bool] = lambda: True) -> APIRouter:
    """galley's config API.  `store_connected` says whether NATS is reachable now: a write
    while it is not fails at once with 503 instead of waiting out JetStream's timeout."""
    api = APIRouter(prefix="/apis/v1", dependencies=[Depends(_authenticate(token))])

    @api.post("/apply")
    async def apply(request: Request, namespace: str = default_namespace, dryRun: bool = False) -> JSONResponse:
        result = parse_text(await _body(request), "request", default_namespace=namespace)
        summary = report(result)
        if not dryRun and result.resources and not store_connected():
            raise StoreUnavailable([])
        # What Istio's analyzers find about the valid resources: warnings, never refusals.
        findings = await analysis.warnings([r for _, r in result.resources]) if analysis is not None else []
        outcomes: list[dict[str, str]] = []
        if not dryRun:
            for _, resource in result.resources:
                try:
                    outcomes.append({"resource": resource.ref, "result": await applied.apply(resource)})
                except BusError as exc:
                    raise StoreUnavailable([o["resource"] for o in outcomes], exc) from exc
        warnings = summary.warnings + findings
        body = {"applied": outcomes, "errors": summary.errors, "warnings": warnings,
                "unsupported": summary.unsupported, "valid": summary.valid}
        return JSONResponse(body, status_code=200 if summary.ok else 422, headers=warning_headers(warnings))

    @api.post("/delete")
    async def delete(request: Request, namespace: str = default_namespace, dryRun: bool = False) -> JSONResponse:
        """`dryRun`: delete nothing; say what would be deleted and what is not there."""
        result = parse_text(await _body(request), "request", default_namespace=namespace)
        deleted: list[str] = []
        missing: list[str] = []
        identities = result.identities()
        if identities and not dryRun and not store_connected():
            raise StoreUnavailable([])
        for kind, ns, name in identities:
            key = config_key(kind, ns, name)
            try:
                found = applied.get(key) is not None if dryRun else await applied.delete(key)
            except BusError as exc:
                raise StoreUnavailable([f"deleted {d}" for d in deleted], exc) from exc
            (deleted if found else missing).append(f"{kind} {ns}/{name}")
        errors = [str(e) for e in result.unreadable]
        return JSONResponse({"deleted": deleted, "notFound": missing, "errors": errors},
                            status_code=200 if not errors and not missing else 404 if missing else 422)

    @api.get("/resources")
    async def get(kind: str, namespace: str | None = None, name: str | None = None) -> JSONResponse:
        info = kind_by_name(kind)
        if info is None:
            raise UnknownKind(kind)
        found: list[Resource] = [
            resource for _, resource in merge(sources).values()
            if resource.kind == info.kind and (namespace is None or resource.namespace == namespace)
            and (name is None or resource.name == name)
        ]
        found.sort(key=lambda r: (r.namespace, r.name))
        return JSONResponse({"kind": info.kind, "items": [r.to_dict() for r in found]})

    return api
