"""Kubernetes service-account tokens, checked by the API server with a TokenReview.

What Istio's CA does with `--token-audiences`: the workload presents its (projected)
service-account token, the API server vouches for its signature, expiry, binding and
audience, and the caller is the namespace and service account the review names.  Tokens
are never logged.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from libs.kube import KubeClient, KubeError, TokenRejected, review_token
from libs.pki import workload_name_problem
from services.citadel.auth.authenticator import Caller
from services.citadel.errors import AuthenticatorUnavailable, Unauthenticated

log = structlog.get_logger(__name__)

# Istio's CA asks for this audience unless told otherwise (its TOKEN_AUDIENCES default).
DEFAULT_AUDIENCES = ("istio-ca",)
# Service-account tokens are about 1 KiB; anything far larger is refused before it costs
# the API server a review.
MAX_KUBE_TOKEN_BYTES = 16 * 1024


class KubeTokenAuthenticator:
    def __init__(self, kube: KubeClient, audiences: Sequence[str] = DEFAULT_AUDIENCES) -> None:
        self.kube = kube
        self.audiences = tuple(audiences)

    async def authenticate(self, token: str) -> Caller:
        if len(token) > MAX_KUBE_TOKEN_BYTES:
            raise Unauthenticated(f"token is longer than {MAX_KUBE_TOKEN_BYTES} bytes")
        try:
            account = await review_token(self.kube, token, self.audiences)
        except TokenRejected as exc:
            raise Unauthenticated(f"Kubernetes token {exc.reason}") from exc
        except KubeError as exc:
            # The API server is down or refused the review itself (RBAC, 5xx): the token may
            # be fine, so the caller is told to retry rather than that it is unknown.
            log.warning("token review failed", error=str(exc), api_server=self.kube.host)
            raise AuthenticatorUnavailable(f"cannot review the token with the Kubernetes API server: {exc}") from exc
        # The API server only vouches for names it issued, but they still have to make a
        # SPIFFE identity; refuse here rather than fail later in signing.
        problem = workload_name_problem(account.namespace, account.name)
        if problem:
            raise Unauthenticated(f"reviewed service account: {problem}")
        return Caller(account.namespace, account.name)
