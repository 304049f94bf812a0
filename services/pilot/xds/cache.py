"""Snapshots per proxy class for the current push: computed once, shared by every
proxy with the same inputs."""

from __future__ import annotations

from typing import Any

import structlog

from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking.generator import generate
from services.pilot.networking.memo import TranslationMemo
from services.pilot.xds.snapshot import Snapshot

log = structlog.get_logger(__name__)


class SnapshotCache:
    def __init__(self) -> None:
        self._push: PushContext | None = None
        self._by_class: dict[tuple[Any, ...], Snapshot] = {}
        self.memo = TranslationMemo()
        self.builds = 0

    @property
    def push_context(self) -> PushContext | None:
        return self._push

    def set_push(self, push: PushContext) -> None:
        self._push = push
        self._by_class = {}
        self.memo.new_push()

    def get(self, proxy: Proxy) -> Snapshot | None:
        """The proxy's snapshot for the current push (None before the first push).

        Raises `InconsistentConfig` if the generated config fails its self-check.
        """
        if self._push is None:
            return None
        key = proxy.class_key
        snapshot = self._by_class.get(key)
        if snapshot is None:
            config = generate(proxy, self._push, self.memo)
            for warning in config.warnings:
                log.warning("config warning", proxy=proxy.id, version=config.version, warning=warning)
            snapshot = Snapshot.from_config(config, self.memo)
            self._by_class[key] = snapshot
            self.builds += 1
        return snapshot
