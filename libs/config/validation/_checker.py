"""Collects every problem of one resource."""

from __future__ import annotations

from libs.config._errors import FieldError


class Checker:
    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        self.problems: list[FieldError] = []

    def error(self, path: str, reason: str) -> None:
        self.problems.append(FieldError(path, reason))

    def warn(self, path: str, reason: str) -> None:
        self.problems.append(FieldError(path, reason, warning=True))

    @property
    def failed(self) -> bool:
        return any(not p.warning for p in self.problems)
