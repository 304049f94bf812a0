"""The Kubernetes service registry: informers on the API server's Services,
EndpointSlices, Pods, Nodes and Namespaces (libs/kube: list, watch, bookmarks, relist on
410), kept as objects and turned into pilot's model on demand (model/kube.py).

Flows: a Service or Namespace added, changed or removed -> `on_services_change` (a full
push: clusters, listeners and routes follow services, and a namespace's labels decide
whether the mesh config's discoverySelectors keep its services); an EndpointSlice, Pod or
Node -> `on_endpoints_change` (an endpoint push).  The registry is synced once every
informer has listed.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from libs.kube import KubeClient, ResourceRef, Synced, WatchSettings, watch_resources
from libs.runtime import Backoff, Supervisor
from services.pilot.model import kube
from services.pilot.model.registry import KUBERNETES, RegistryContents

log = structlog.get_logger(__name__)

SERVICES = ResourceRef("", "v1", "services")
ENDPOINT_SLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices")
PODS = ResourceRef("", "v1", "pods")
NODES = ResourceRef("", "v1", "nodes", namespaced=False)
NAMESPACES = ResourceRef("", "v1", "namespaces", namespaced=False)


@dataclass(frozen=True)
class _Informer:
    ref: ResourceRef
    # Which of the registry's maps it fills, and whether its changes move services.
    store: str
    services: bool = False


INFORMERS = (_Informer(SERVICES, "services", services=True), _Informer(ENDPOINT_SLICES, "slices"),
             _Informer(PODS, "pods"), _Informer(NODES, "nodes"), _Informer(NAMESPACES, "namespaces", services=True))
# Stores keyed by name alone: the cluster-scoped kinds.
_BY_NAME = ("nodes", "namespaces")


class KubernetesRegistry:
    name = KUBERNETES

    def __init__(self, client: KubeClient, *, domain_suffix: str, on_synced: Callable[[], None],
                 on_services_change: Callable[[], None], on_endpoints_change: Callable[[], None],
                 settings: WatchSettings | None = None) -> None:
        self._client = client
        self._domain_suffix = domain_suffix
        self._on_synced = on_synced
        self._on_services_change = on_services_change
        self._on_endpoints_change = on_endpoints_change
        self._settings = settings
        self.objects = kube.KubeObjects()
        self._listed: set[str] = set()
        self._contents: RegistryContents | None = None

    @property
    def synced(self) -> bool:
        return len(self._listed) == len(INFORMERS)

    def contents(self) -> RegistryContents:
        if self._contents is None:
            self._contents = kube.contents(self.objects, self._domain_suffix, self._version())
        return self._contents

    def _version(self) -> str:
        """A digest of every object's resourceVersion: the same objects give the same version
        on every pilot replica."""
        held = [(store, key, str(((obj.get("metadata") or {}).get("resourceVersion")) or ""))
                for store in ("services", "slices", "pods", "nodes", "namespaces")
                for key, obj in sorted(getattr(self.objects, store).items())]
        if not held:
            return ""
        return hashlib.blake2b(repr(held).encode(), digest_size=4).hexdigest()

    def start(self, supervisor: Supervisor) -> None:
        for informer in INFORMERS:
            supervisor.start(f"kube-{informer.ref.plural}", lambda i=informer: self._follow(i),  # type: ignore[misc]
                             restart=Backoff())

    async def _follow(self, informer: _Informer) -> None:
        store: dict[Any, Any] = getattr(self.objects, informer.store)
        async with contextlib.aclosing(watch_resources(self._client, informer.ref,
                                                       settings=self._settings)) as events:
            async for event in events:
                if isinstance(event, Synced):
                    if informer.store not in self._listed:
                        self._listed.add(informer.store)
                        log.info("kubernetes objects listed", resource=informer.ref.plural, objects=len(store))
                        if self.synced:
                            self._on_synced()
                    continue
                key = event.name if informer.store in _BY_NAME else event.key
                if event.type == "DELETED":
                    store.pop(key, None)
                else:
                    store[key] = event.object
                self._contents = None
                if self.synced:
                    (self._on_services_change if informer.services else self._on_endpoints_change)()
