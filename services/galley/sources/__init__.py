"""Where galley's config comes from.  Every source reports the resources it holds
(`resources()`), whether it has loaded its initial state (`synced`), and calls its
`on_change` callback when that set changes."""

from __future__ import annotations

from typing import Protocol

from libs.config import Origin, Resource


class Source(Protocol):
    name: str

    @property
    def synced(self) -> bool: ...

    def resources(self) -> dict[str, tuple[Origin, Resource]]: ...

    async def run(self) -> None: ...


def merge(sources: list[Source]) -> dict[str, tuple[Origin, Resource]]:
    """One view of every source; for a key held by several, the earlier source wins."""
    merged: dict[str, tuple[Origin, Resource]] = {}
    for source in reversed(sources):
        merged.update(source.resources())
    return merged
