"""Citadel's errors: one root, one class per way a request or the CA can fail.

The gRPC edge (`api.py`) maps each request error to one status code; nothing else in
citadel knows about gRPC.
"""

from __future__ import annotations


class CitadelError(Exception):
    """Root of citadel's errors."""


class RequestError(CitadelError):
    """A CSR request was refused; nothing was signed."""


class Unauthenticated(RequestError):
    """The bearer token is missing, malformed, expired, or not signed by this citadel."""


class AuthenticatorUnavailable(RequestError):
    """The token could not be checked: the Kubernetes API server (TokenReview) did not answer,
    or answered with a failure.  Not the caller's fault; retrying later may succeed."""


class InvalidCsr(RequestError):
    """The CSR cannot be signed as sent: not PEM, bad signature, a key type not allowed."""


class InvalidTtl(RequestError):
    """The requested validity exceeds the CA's maximum (refused, as Istio does)."""

    def __init__(self, requested_s: int, maximum_s: int) -> None:
        super().__init__(f"requested validity {requested_s}s exceeds the maximum of {maximum_s}s")
        self.requested_s = requested_s
        self.maximum_s = maximum_s


class IdentityMismatch(RequestError):
    """The CSR asks for a name the authenticated caller does not hold."""

    def __init__(self, caller: str, requested: str) -> None:
        super().__init__(f"caller {caller} may not request a certificate for {requested}")
        self.caller = caller
        self.requested = requested


class CaLoadError(CitadelError):
    """The CA's key material is missing, unreadable or inconsistent; citadel cannot start."""


class RotationError(CitadelError):
    """A root rotation step cannot be taken now (wrong phase, a plugged-in CA, a store that
    changed under us); nothing was changed."""
