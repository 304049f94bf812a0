"""Authentication at the CSR API: a bearer token in, the caller's identity out.

`TokenAuthenticator` is the seam: the bootstrap-token implementation is here, the
Kubernetes TokenReview one in `kube.py`, and `CombinedAuthenticator` accepts either, as
Istio's CA runs several authenticators side by side.  `authenticate` is async because a
TokenReview is a network call; the bootstrap check is local and never awaits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from services.citadel.auth.tokens import is_bootstrap_token, verify_token
from services.citadel.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Caller:
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service_account}"


class TokenAuthenticator(Protocol):
    async def authenticate(self, token: str) -> Caller:
        """The identity `token` proves; raises Unauthenticated if it proves none, and
        AuthenticatorUnavailable if it cannot be checked now."""
        ...


class BootstrapTokenAuthenticator:
    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    async def authenticate(self, token: str) -> Caller:
        claims = verify_token(self._key, token, now=self._clock())
        return Caller(claims.namespace, claims.service_account)


class CombinedAuthenticator:
    """Bootstrap tokens and Kubernetes tokens side by side, told apart by their header.

    A bootstrap token (HS256) is checked locally and its verdict is final; anything else
    goes to the TokenReview.  Dispatching on the format rather than trying one after the
    other keeps bootstrap tokens away from the API server, and the error the caller sees is
    the one from the authenticator its token was meant for.
    """

    def __init__(self, bootstrap: TokenAuthenticator, kube: TokenAuthenticator) -> None:
        self.bootstrap = bootstrap
        self.kube = kube

    async def authenticate(self, token: str) -> Caller:
        chosen = self.bootstrap if is_bootstrap_token(token) else self.kube
        return await chosen.authenticate(token)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token from `authorization: Bearer <token>` gRPC metadata."""
    values = [value for key, value in metadata if key.lower() == "authorization"]
    if not values:
        raise Unauthenticated("no authorization metadata (expected 'authorization: Bearer <token>')")
    if len(values) > 1:
        raise Unauthenticated("more than one authorization metadata entry")
    value = values[0].decode(errors="replace") if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization metadata is not 'Bearer <token>'")
    return token.strip()
