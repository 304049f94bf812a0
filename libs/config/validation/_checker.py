"""Collects every problem of one resource."""

from __future__ import annotations

from collections.abc import Mapping

from libs.config._errors import FieldError


class Checker:
    """What a validator knows of the resource besides its spec, and where problems go.

    Validators report through `error` (rejects the resource) and `warn` (reported, accepted);
    they never raise, so every problem of a resource is found in one pass.
    """

    def __init__(self, namespace: str = "default", name: str = "",
                 annotations: Mapping[str, str] | None = None) -> None:
        self.namespace = namespace
        self.name = name
        self.annotations: Mapping[str, str] = annotations or {}
        self.problems: list[FieldError] = []

    def error(self, path: str, reason: str) -> None:
        self.problems.append(FieldError(path, reason))

    def warn(self, path: str, reason: str) -> None:
        self.problems.append(FieldError(path, reason, warning=True))

    @property
    def failed(self) -> bool:
        return any(not p.warning for p in self.problems)
