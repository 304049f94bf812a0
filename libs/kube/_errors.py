"""Errors of the Kubernetes layer.

The `kubernetes` client's own exceptions never leave `libs.kube`: each is wrapped (with
`raise ... from`) in one of these, so callers catch `KubeError` and read fields instead of
parsing messages.

    KubeError
    +-- KubeConfigError     no usable kubeconfig or in-cluster configuration
    +-- KubeUnavailable     the API server could not be reached, or a stream broke mid-way
    +-- KubeApiError        the API server answered with a failure Status
    |   +-- ResourceExpired 410 Gone: a resourceVersion older than the server's history
    |   +-- AlreadyExists   409 on create: an object of that name exists
    +-- TokenRejected       a TokenReview did not authenticate a service account
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException

GONE = 410
CONFLICT = 409
NOT_FOUND = 404


class KubeError(Exception):
    """Root of every error raised by `libs.kube`."""


class KubeConfigError(KubeError):
    """Neither the kubeconfig nor the in-cluster service account gave a usable client."""


class KubeUnavailable(KubeError):
    """The API server did not answer (refused, reset, timed out, TLS failed, stream cut).

    Retrying later may succeed; informers do so with backoff."""

    def __init__(self, action: str, cause: str) -> None:
        super().__init__(f"{action}: API server unavailable: {cause}")
        self.action = action
        self.cause = cause


class KubeApiError(KubeError):
    """The API server answered `action` with a failure Status (HTTP `status`, `reason`)."""

    def __init__(self, action: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{action}: {status} {reason}: {message}" if message else f"{action}: {status} {reason}")
        self.action = action
        self.status = status
        self.reason = reason
        self.message = message


class ResourceExpired(KubeApiError):
    """410 Gone: the server no longer holds the history after the requested resourceVersion.

    The cure is a fresh list (a "relist"), then a watch from the list's resourceVersion."""


class AlreadyExists(KubeApiError):
    """409 on create: another writer created the object first; read it instead."""


class TokenRejected(KubeError):
    """A TokenReview did not vouch for the token as a service account's (for `audiences`)."""

    def __init__(self, reason: str, *, audiences: tuple[str, ...] = ()) -> None:
        super().__init__(f"token rejected: {reason}")
        self.reason = reason
        self.audiences = audiences


def status_error(action: str, status: Any, *, http_status: int = 0, http_reason: str = "") -> KubeApiError:
    """The error a Kubernetes `Status` stands for, from an error body or a watch ERROR event.

    A Status that cannot be read still yields an error, carrying the HTTP status line."""
    body = status if isinstance(status, dict) else {}
    code = body["code"] if isinstance(body.get("code"), int) else http_status
    reason = str(body.get("reason") or http_reason or "Unknown")
    message = str(body.get("message") or "")
    kind: type[KubeApiError] = KubeApiError
    if code == GONE:
        kind = ResourceExpired
    elif code == CONFLICT and reason == "AlreadyExists":
        # A 409 Conflict (a stale resourceVersion on replace) is not this.
        kind = AlreadyExists
    return kind(action, code, reason, message)


def from_api_exception(action: str, exc: ApiException) -> KubeError:
    """Map the client's `ApiException`: status 0 means it never got an HTTP answer."""
    if not exc.status:
        return KubeUnavailable(action, str(exc.reason or exc).strip())
    try:
        body = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        body = None
    return status_error(action, body, http_status=int(exc.status), http_reason=str(exc.reason or ""))
