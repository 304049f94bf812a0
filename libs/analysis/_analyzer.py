"""What an analyzer is: a pure function from the shared `Catalog` to messages, with
Istio's analyzer name, the config kinds it reads, and whether it needs the platform."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from libs.analysis._catalog import Catalog
from libs.analysis._messages import Message


@dataclass(frozen=True)
class Analyzer:
    # Istio's name for the analyzer doing the same checks (`istioctl analyze --list-analyzers`).
    name: str
    description: str
    run: Callable[[Catalog], Iterable[Message]]
    # The config kinds it reads: what a live analysis fetches.
    kinds: tuple[str, ...] = ()
    # Whether it needs to know the platform's services and workloads; skipped when they are
    # unknown, rather than report every host as missing.
    needs_platform: bool = False
