"""`/ca/rotation` on citadel's monitoring port: GET shows the rotation (phase, roots, what
it waits for), POST begins one (`mizzenctl x ca rotate`).

POST is taken only from a loopback peer: on the local mesh that is mizzenctl on the same
host; on Kubernetes, `kubectl port-forward` to the citadel pod (which connects from the
pod's loopback).  GET is as open as /metrics.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from services.citadel.errors import RotationError
from services.citadel.rotation.rotator import RootRotator


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def router(current: Callable[[], RootRotator | None]) -> APIRouter:
    """`current()`: the rotator, once the CA is loaded (503 before)."""
    api = APIRouter(prefix="/ca")

    def loaded() -> RootRotator:
        rotator = current()
        if rotator is None:
            raise HTTPException(503, "citadel has not loaded its CA yet")
        return rotator

    @api.get("/rotation")
    def status() -> dict[str, Any]:
        return loaded().status()

    @api.post("/rotation", status_code=202)
    def begin(request: Request) -> dict[str, Any]:
        if not _loopback(request):
            raise HTTPException(403, "a root rotation is begun from citadel's own host only (on Kubernetes: "
                                     "kubectl port-forward to the citadel pod)")
        rotator = loaded()
        try:
            rotator.request()
        except RotationError as exc:
            raise HTTPException(409, str(exc)) from exc
        return rotator.status()

    return api
