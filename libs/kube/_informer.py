"""`watch_resources`: the list-then-watch protocol of a Kubernetes informer, for asyncio.

    list ──> yield every object, then Synced ──> watch from the list's resourceVersion
      ^                                             │
      │  410 Gone: relist, yield the difference     │  stream ends (server timeout, dropped):
      └─────────────────────────────────────────────┤  re-watch from the last resourceVersion
                                                    │  (events and bookmarks advance it)
                          connection error: back off, then re-watch (or re-list) ┘

The informer remembers every object it yielded, so a relist reports exactly what changed
while it was not watching (deletions included) and a replayed event it has already seen is
dropped.  Errors it can recover from are logged and retried forever; only cancellation ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import structlog

from libs.kube._client import KubeClient
from libs.kube._errors import KubeError, ResourceExpired
from libs.kube._events import (
    Bookmark,
    ObjectKey,
    Synced,
    WatchEvent,
    decode_event,
    object_key,
    relist_diff,
    resource_version_of,
)
from libs.kube._resources import ResourceRef
from libs.kube._stream import WatchStream
from libs.runtime import Backoff

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WatchSettings:
    """How an informer paces its requests."""

    # Seconds each watch asks the server to stay open (`timeoutSeconds`), stretched by a random
    # factor of 1-2 so that many watchers do not all reconnect at once; then it re-watches.
    watch_timeout_s: int = 300
    # Seconds a watch may go silent beyond its timeout before the connection counts as dead.
    read_grace_s: float = 30.0
    # Waits between retries after a failed list or a broken connection.
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, maximum_s=30.0, reset_after_s=60.0))


def watch_resources(client: KubeClient, ref: ResourceRef, *, namespace: str | None = None,
                    label_selector: str | None = None,
                    settings: WatchSettings | None = None) -> AsyncGenerator[WatchEvent | Synced, None]:
    """Every object of `ref` (in `namespace`, or all), then `Synced`, then every change, forever.

    Close it with `contextlib.aclosing` so its watch thread stops with it."""
    return _Informer(client, ref, namespace, label_selector, settings or WatchSettings()).events()


class _Informer:
    def __init__(self, client: KubeClient, ref: ResourceRef, namespace: str | None,
                 label_selector: str | None, settings: WatchSettings) -> None:
        self.client = client
        self.ref = ref
        self.namespace = namespace
        self.label_selector = label_selector
        self.settings = settings
        self.known: dict[ObjectKey, dict[str, Any]] = {}
        self.resource_version: str | None = None  # None: (re)list before watching
        self.listed = False
        self.delays = settings.backoff.delays()
        self.log = log.bind(resource=str(ref), namespace=namespace or "*")

    async def events(self) -> AsyncGenerator[WatchEvent | Synced, None]:
        while True:
            started = time.monotonic()
            from_list = self.resource_version is None
            delivered = False
            try:
                if self.resource_version is None:
                    for item in await self._relist():
                        yield item
                async with contextlib.aclosing(self._watch()) as stream:
                    async for event in stream:
                        delivered = True
                        yield event
            except ResourceExpired as exc:
                self.resource_version = None
                if from_list and not delivered:
                    # Expired right after a fresh list: the server is unwell; do not hammer it.
                    await self._pause(started, "watch expired straight after a list", exc)
                else:
                    self.log.info("watch expired (410 Gone); relisting", error=exc.message)
            except KubeError as exc:
                what = "list failed" if self.resource_version is None else "watch failed"
                await self._pause(started, what, exc)

    async def _pause(self, started: float, what: str, exc: KubeError) -> None:
        # A watch that ran long enough before failing starts the backoff over.
        delay = self.delays.after_run(time.monotonic() - started)
        self.log.warning(f"{what}; retrying", error=str(exc), retry_in_s=delay,
                         resource_version=self.resource_version)
        await asyncio.sleep(delay)

    async def _relist(self) -> list[WatchEvent | Synced]:
        listing = await self.client.list(self.ref, namespace=self.namespace, label_selector=self.label_selector)
        changes = relist_diff(self.known, listing.items)
        self.known = {object_key(obj): obj for obj in listing.items}
        self.resource_version = listing.resource_version
        initial = not self.listed
        self.listed = True
        counts = {kind: sum(1 for e in changes if e.type == kind) for kind in ("ADDED", "MODIFIED", "DELETED")}
        self.log.info("listed" if initial else "relisted", objects=len(listing.items),
                      resource_version=listing.resource_version, added=counts["ADDED"],
                      modified=counts["MODIFIED"], deleted=counts["DELETED"])
        return [*changes, Synced(listing.resource_version, initial)]

    async def _watch(self) -> AsyncGenerator[WatchEvent, None]:
        assert self.resource_version is not None
        timeout_s = int(self.settings.watch_timeout_s * random.uniform(1.0, 2.0))
        action = f"watch {self.ref}"
        stream = WatchStream(functools.partial(
            self.client.open_watch, self.ref, namespace=self.namespace, resource_version=self.resource_version,
            timeout_s=timeout_s, read_timeout_s=timeout_s + self.settings.read_grace_s,
            label_selector=self.label_selector), action=action)
        self.log.debug("watch started", resource_version=self.resource_version, timeout_s=timeout_s)
        try:
            async with contextlib.aclosing(stream.events()) as lines:
                async for line in lines:
                    item = decode_event(line, action)
                    if isinstance(item, Bookmark):
                        self.log.debug("bookmark", resource_version=item.resource_version)
                        self.resource_version = item.resource_version or self.resource_version
                        continue
                    event = self._apply(item)
                    if event is not None:
                        yield event
        finally:
            await stream.close()
        self.log.debug("watch ended; resuming", resource_version=self.resource_version)

    def _apply(self, event: WatchEvent) -> WatchEvent | None:
        """Record `event`; None if it repeats what was already yielded."""
        self.resource_version = event.resource_version or self.resource_version
        previous = self.known.get(event.key)
        if event.type == "DELETED":
            if previous is None:
                return None
            del self.known[event.key]
            return event
        if previous is not None and resource_version_of(previous) == event.resource_version:
            self.log.debug("duplicate event dropped", object=event.key, resource_version=event.resource_version)
            return None
        self.known[event.key] = event.object
        # Consumers get ADDED for a key they do not know and MODIFIED for one they do,
        # whatever the server called it (a label change can turn a MODIFIED into an ADDED).
        return WatchEvent("ADDED" if previous is None else "MODIFIED", event.object)
