"""Readiness: a service is ready once every condition it registered is met."""

from __future__ import annotations


class Readiness:
    """Named conditions that gate `/readyz`.

    A service registers each condition at start (`require`) and marks it when met
    (`mark`), e.g. "config-synced" once the initial KV state is loaded.
    """

    def __init__(self) -> None:
        self._conditions: dict[str, bool] = {}

    def require(self, *names: str) -> None:
        for name in names:
            self._conditions.setdefault(name, False)

    def mark(self, name: str, ready: bool = True) -> None:
        if name not in self._conditions:
            raise KeyError(f"readiness condition {name!r} was never required")
        self._conditions[name] = ready

    @property
    def ready(self) -> bool:
        return all(self._conditions.values())

    def pending(self) -> list[str]:
        return sorted(name for name, met in self._conditions.items() if not met)
