"""The injector's own errors; injection's are `libs.inject`'s.  `webhook.py` maps both to
admission statuses in one table, and a body that is not an AdmissionReview to HTTP 400."""

from __future__ import annotations


class InjectorError(Exception):
    """Root of the injector's errors."""


class BadReview(InjectorError):
    """The request body is not an AdmissionReview the webhook can answer."""


class ConfigNotLoaded(InjectorError):
    """A review came before the injection config and the mesh config were loaded."""
