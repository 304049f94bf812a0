"""Galley's errors: one root, one class per way galley refuses a request.

The HTTP edge maps each to a status once (`HTTP_STATUS` in `api.py`, handed to the
monitoring servers that serve the API and the admission webhook).  Config that does not
validate is not an error here: it is an outcome, reported per resource with its field and
reason in a 422 answer's body, beside what was applied.
"""

from __future__ import annotations


class GalleyError(Exception):
    """Root of galley's errors."""


class Unauthorized(GalleyError):
    def __init__(self) -> None:
        super().__init__("missing or wrong bearer token (see the galley token file)")


class BodyTooLarge(GalleyError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"request body over {limit_bytes} bytes")


class UnknownKind(GalleyError):
    def __init__(self, kind: str) -> None:
        super().__init__(f"unknown kind {kind!r}")


class BadAdmissionReview(GalleyError):
    """The webhook's body is not an AdmissionReview (the API server never sends one such)."""


class StoreUnavailable(GalleyError):
    """NATS, where applied config is kept, did not take a write: which resources were stored
    before it went, so no half-apply is silent.  Retrying once NATS is back succeeds."""

    def __init__(self, done: list[str], cause: Exception | None = None) -> None:
        stored = f"stored before that: {', '.join(done)}" if done else "nothing was stored"
        reason = f" ({cause})" if cause is not None else ""
        super().__init__(f"galley cannot reach NATS, where applied config is kept{reason}; {stored}. "
                         "Apply again once NATS is back (`mizzenctl status`).")
        self.done = done
