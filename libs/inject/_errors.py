"""Errors of injection: one root, and one class per way a pod or a config cannot be used.

The webhook maps each to an admission status once, at its edge (`services.sidecar_injector.
webhook`); `mizzenctl kube-inject` prints it.  Every error names the field and the reason,
so a denied pod tells its author what to change.
"""

from __future__ import annotations


class InjectError(Exception):
    """Root of injection's errors: the pod was not injected, nothing was patched."""


class InvalidPod(InjectError):
    """The pod cannot be injected as written: a malformed annotation, a probe naming a port
    the container does not have, a name the sidecar needs.  `path` is the pod field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def under(self, prefix: str) -> InvalidPod:
        """The same problem, its path seen from an enclosing object (`spec.template.`)."""
        return InvalidPod(f"{prefix}{self.path}", self.reason)


class InvalidConfig(InjectError):
    """The injection config (Istio's `istio-sidecar-injector` ConfigMap) or the mesh config
    cannot be used.  `source` says where it was read, `path` which field."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        super().__init__(f"{source}: {path}: {reason}" if path else f"{source}: {reason}")
        self.source = source
        self.path = path
        self.reason = reason


class InconsistentPatch(InjectError):
    """The JSON patch computed for a pod does not turn it into the injected pod: a bug in
    injection, refused rather than sent half-right."""
