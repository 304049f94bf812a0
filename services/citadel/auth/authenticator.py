"""Authentication at the CSR API: a bearer token in, the caller's identity out.

`TokenAuthenticator` is the seam: the bootstrap-token implementation is here; a
Kubernetes TokenReview implementation can stand beside it later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from services.citadel.auth.tokens import verify_token
from services.citadel.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Caller:
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service_account}"


class TokenAuthenticator(Protocol):
    def authenticate(self, token: str) -> Caller:
        """The identity `token` proves; raises Unauthenticated if it proves none."""
        ...


class BootstrapTokenAuthenticator:
    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def authenticate(self, token: str) -> Caller:
        claims = verify_token(self._key, token, now=self._clock())
        return Caller(claims.namespace, claims.service_account)


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
