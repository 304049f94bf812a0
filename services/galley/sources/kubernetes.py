"""Istio config from the Kubernetes API: every kind Mizzen supports, listed then watched.

Which version is watched: Istio serves each CRD in several versions over one stored object,
so a watch per version would report every object once per version.  The source asks
discovery (GET /apis) and watches one version per kind: the group's preferred version (v1
for networking.istio.io and security.istio.io on Istio 1.22+) when Mizzen reads it, else the
highest-priority served version Mizzen reads (v1beta1, then v1alpha3, on older Istio).  The
object is the same whichever version serves it; only its apiVersion differs.

A kind whose CRD is not installed has no objects (deleting a CRD deletes its objects), so it
counts as empty rather than holding up the initial sync; discovery runs again every
`rediscover_interval_s` and starts an informer for each kind whose CRD has appeared since.

Like `FileSource`, what was valid survives a bad edit: an invalid update keeps the object's
last valid version (and reports the error), a delete removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from libs.config import (
    DocumentError,
    KindInfo,
    Origin,
    Resource,
    ResourceInvalid,
    UnsupportedKind,
    parse_resource,
    supported_kinds,
    warnings_of,
)
from libs.kube import (
    ApiGroup,
    KubeClient,
    KubeError,
    ResourceRef,
    Synced,
    WatchEvent,
    WatchSettings,
    choose_version,
    watch_resources,
)
from libs.runtime import Backoff

log = structlog.get_logger(__name__)

# kubectl apply copies the whole object into this annotation; publishing it would double every resource.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)

ObjectId = tuple[str, str, str]  # (kind, namespace, name), as the mesh-config key names it


@dataclass(frozen=True)
class KindWatch:
    """One informer: a kind at its chosen version, in one namespace (None: all)."""

    kind: str
    ref: ResourceRef
    namespace: str | None


def plan_watches(kinds: Iterable[KindInfo], groups: dict[str, ApiGroup], namespaces: tuple[str, ...] = (),
                 mesh_namespace: str = "istio-system") -> tuple[list[KindWatch], list[str]]:
    """The informers to run, and the kinds the API server does not serve in any version we read.

    The mesh config and the rate-limit config are core ConfigMaps (`istio`,
    `ratelimit-config`), always served: one watch of `mesh_namespace`'s ConfigMaps finds
    both, as istiod reads only its own namespace's."""
    watches: list[KindWatch] = []
    missing: list[str] = []
    for info in kinds:
        if not info.group:
            ref = ResourceRef("", info.versions[0], info.plural)
            if not any(w.ref == ref and w.namespace == mesh_namespace for w in watches):
                watches.append(KindWatch(info.kind, ref, mesh_namespace))
            continue
        version = choose_version(info.versions, groups.get(info.group))
        if version is None:
            missing.append(f"{info.kind} ({info.group})")
            continue
        ref = ResourceRef(info.group, version, info.plural)
        watches.extend(KindWatch(info.kind, ref, namespace) for namespace in (namespaces or (None,)))
    return watches, missing


def origin_of(plural: str, namespace: str, name: str) -> Origin:
    return Origin(f"kubernetes:{plural}/{namespace}/{name}")


def config_body(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(obj.get("metadata") or {})
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return {**obj, "metadata": metadata}


class KubernetesSource:
    """Galley's view of the Istio config stored in Kubernetes."""

    def __init__(self, client: KubeClient, *, namespaces: tuple[str, ...] = (),
                 settings: WatchSettings | None = None, discovery_backoff: Backoff | None = None,
                 rediscover_interval_s: float = 60.0, on_change: Callable[[], None] = lambda: None,
                 mesh_namespace: str = "istio-system") -> None:
        self.name = "kubernetes"
        self._client = client
        self._namespaces = namespaces
        self._mesh_namespace = mesh_namespace
        self._settings = settings or WatchSettings()
        self._discovery_backoff = discovery_backoff or Backoff(initial_s=1.0, maximum_s=30.0)
        self._rediscover_interval_s = rediscover_interval_s
        self._on_change = on_change
        self._valid: dict[ObjectId, tuple[Origin, Resource]] = {}
        self._invalid: dict[ObjectId, tuple[Origin, list[str]]] = {}
        self.watched: list[KindWatch] = []
        self._pending: set[KindWatch] = set()
        self._synced = asyncio.Event()

    @property
    def synced(self) -> bool:
        """True once every kind's initial list has been loaded."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    @property
    def errors(self) -> dict[str, list[str]]:
        """What is wrong with each object that is invalid now, by origin."""
        return {str(origin): lines for origin, lines in self._invalid.values()}

    def resources(self) -> dict[str, tuple[Origin, Resource]]:
        return {resource.key: (origin, resource) for origin, resource in self._valid.values()}

    async def run(self) -> None:
        """Discover, follow every served kind, rediscover now and then; until cancelled.

        An informer's crash ends run() (its TaskGroup cancels the others); state survives a
        restart, and the next initial lists reconcile it."""
        self.watched = []
        self._pending = set()
        missing_before: list[str] | None = None
        async with asyncio.TaskGroup() as tasks:
            while True:
                watches, missing = await self._discover()
                new = [w for w in watches if w not in self.watched]
                for watch in new:
                    self.watched.append(watch)
                    self._pending.add(watch)
                    tasks.create_task(self._follow(watch), name=f"kubernetes {watch.ref} in {watch.namespace or '*'}")
                if new:
                    log.info("watching kubernetes", resources=sorted({str(w.ref) for w in new}),
                             namespaces=list(self._namespaces) or ["*"])
                if missing and missing != missing_before:
                    log.warning("kinds not served by the API server count as empty until their CRDs appear",
                                kinds=missing, recheck_in_s=self._rediscover_interval_s)
                missing_before = missing
                self._check_synced()
                await asyncio.sleep(self._rediscover_interval_s)

    async def _discover(self) -> tuple[list[KindWatch], list[str]]:
        """The informers the served API calls for; retried with backoff until discovery answers."""
        delays = self._discovery_backoff.delays()
        while True:
            started = time.monotonic()
            try:
                return plan_watches(supported_kinds(), await self._client.api_groups(), self._namespaces,
                                    self._mesh_namespace)
            except KubeError as exc:
                delay = delays.after_run(time.monotonic() - started)
                log.warning("API discovery failed; retrying", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _follow(self, watch: KindWatch) -> None:
        seen: set[ObjectId] | None = set()  # objects of the first list, until it completes
        async with contextlib.aclosing(watch_resources(self._client, watch.ref, namespace=watch.namespace,
                                                       settings=self._settings)) as events:
            async for event in events:
                if isinstance(event, Synced):
                    if seen is not None:
                        self._forget_unlisted(watch, seen)
                        seen = None
                        self._pending.discard(watch)
                        self._check_synced()
                    continue
                object_id = (watch.kind, event.namespace, event.name)
                if seen is not None:
                    seen.add(object_id)
                self._apply(watch, object_id, event)
                if self.synced:
                    self._on_change()

    def _check_synced(self) -> None:
        if not self._pending and not self.synced:
            self._synced.set()
            log.info("kubernetes config loaded", resources=len(self._valid), invalid=len(self._invalid))
            self._on_change()

    def _forget_unlisted(self, watch: KindWatch, listed: set[ObjectId]) -> None:
        """After a restart of run(), drop what a previous run held that the new list lacks."""
        for held in (self._valid, self._invalid):
            for object_id in [o for o in held if o[0] == watch.kind and o not in listed
                              and watch.namespace in (None, o[1])]:
                del held[object_id]

    def _apply(self, watch: KindWatch, object_id: ObjectId, event: WatchEvent) -> None:
        origin = origin_of(watch.ref.plural, event.namespace, event.name)
        where = {"origin": str(origin), "resource_version": event.resource_version}
        if event.type == "DELETED":
            self._valid.pop(object_id, None)
            self._invalid.pop(object_id, None)
            log.info("config deleted", resource=f"{watch.kind} {event.namespace}/{event.name}", **where)
            return
        try:
            resource = parse_resource(config_body(event.object), origin)
        except UnsupportedKind:
            return  # a ConfigMap other than the mesh config's
        except ResourceInvalid as exc:
            kept = object_id in self._valid
            for error in exc.errors:
                log.error("invalid config; keeping its last valid version" if kept else "invalid config; ignored",
                          resource=exc.resource, field=error.path, reason=error.reason, **where)
            self._invalid[object_id] = (origin, exc.lines(with_origin=True))
            return
        except DocumentError as exc:
            log.error("unreadable config object; ignored", error=str(exc), **where)
            self._invalid[object_id] = (origin, [str(exc)])
            return
        for warning in warnings_of(resource):
            log.warning("config warning", resource=resource.ref, field=warning.path, reason=warning.reason, **where)
        self._valid[object_id] = (origin, resource)
        self._invalid.pop(object_id, None)
        log.info("config loaded", resource=resource.ref, **where)
