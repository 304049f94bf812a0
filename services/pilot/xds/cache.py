"""Snapshots per proxy class for the current push: computed once, shared by every
proxy with the same inputs.

When only endpoints moved (the config revision, mesh config and services are the last
push's: a registry's change to a service is a full push), a proxy's snapshot is its latest
one with new load assignments, provided its own workload's service instances and its
clusters came out the same: an endpoint change then costs a lookup per proxy, not a
translation, and streams see every other type as the very dict they sent.  The shared
cluster part is rebuilt once per push, and only for the services whose endpoints changed
since the snapshot was made (`outbound_clusters_after`).

When only VirtualServices changed, each sidecar keeps its own side (inbound listeners,
clusters and routes, security filters: see `TranslationMemo.beside_routing`) and the
outbound clusters it shares, and only the outbound listeners and routes it shares with its
namespace are built again.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import structlog
from google.protobuf.message import Message

from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import Endpoints
from services.pilot.networking.generator import generate, outbound_clusters_after, source_address
from services.pilot.networking.memo import ENDPOINTS, FULL, ROUTING, TranslationMemo
from services.pilot.xds.snapshot import Snapshot, drop_responses, encoded

log = structlog.get_logger(__name__)


class SnapshotCache:
    def __init__(self) -> None:
        self._push: PushContext | None = None
        self._by_class: dict[tuple[Any, ...], Snapshot] = {}
        # While the current push differs from the last only in endpoints: the latest snapshot of
        # every proxy class since the last other push, to carry over.
        self._before: dict[tuple[Any, ...], Snapshot] | None = None
        self.memo = TranslationMemo()
        self._shared: dict[Hashable, Any] = {}
        self.builds = 0
        self.carried = 0

    @property
    def push_context(self) -> PushContext | None:
        return self._push

    @property
    def endpoints_only(self) -> bool:
        """Whether the current push changed nothing but endpoints: its snapshots are the last
        ones with new load assignments, which streams seeing the same services share."""
        return self._before is not None

    def set_push(self, push: PushContext) -> None:
        before = self._push
        same_services = before is not None and before.mesh == push.mesh and before.services == push.services
        endpoints_only = same_services and before is not None and before.config.revision == push.config.revision
        routing_only = same_services and before is not None and before.endpoints == push.endpoints \
            and before.workloads == push.workloads and before.config.kinds_changed(push.config) <= {"VirtualService"}
        if endpoints_only and before is not None:
            # Snapshots not asked for during the last push (their streams were busy, or gone)
            # are still carried from the ones before: each records the endpoints it reflects.
            self._before = {**(self._before or {}), **self._by_class}
        else:
            self._before = None
        self._push = push
        self._by_class = {}
        drop_responses(self._shared)
        self._shared = {}
        self.memo.new_push(ENDPOINTS if endpoints_only else ROUTING if routing_only else FULL)

    def get(self, proxy: Proxy) -> Snapshot | None:
        """The proxy's snapshot for the current push (None before the first push).

        Raises `InconsistentConfig` if the generated config fails its self-check.
        """
        if self._push is None:
            return None
        key = proxy.class_key
        snapshot = self._by_class.get(key)
        if snapshot is None:
            snapshot = self._with_new_endpoints(proxy, key, self._push)
            if snapshot is None:
                config = generate(proxy, self._push, self.memo)
                for warning in config.warnings:
                    log.warning("config warning", proxy=proxy.id, version=config.version, warning=warning)
                snapshot = Snapshot.from_config(config, self.memo, shared=self._shared, push=self._push)
                self.builds += 1
            else:
                self.carried += 1
            self._by_class[key] = snapshot
        return snapshot

    def _with_new_endpoints(self, proxy: Proxy, key: tuple[Any, ...], push: PushContext) -> Snapshot | None:
        if self._before is None or proxy.proxyless:
            return None
        old = self._before.get(key)
        if old is None or old.cluster_part is None or old.endpoint_part is None or old.endpoints_source is None:
            return None
        # What its own side read (its workload's instances shape its inbound listeners and
        # clusters) must read the same.
        if not old.reads.same_in(push, proxy.ip):
            return None
        old_clusters, old_endpoints, source = old.cluster_part, old.endpoint_part, old.endpoints_source
        # Proxies that shared a cluster part share its successor: what picks the part (the
        # services they see, their identity and source address) is config and the proxy's
        # own, neither of which an endpoint-only push changes.  So it is worked out for the
        # first of them only, and from the part itself: only the clusters of services whose
        # endpoints changed since it was built are built again.
        clusters, endpoints = self.memo.per_push(
            ("carried-cluster-part", id(old_clusters), id(source)),
            lambda: outbound_clusters_after(push, self._hosts_changed(source, push), (old_clusters, old_endpoints),
                                            proxy.identity, self.memo, source_address(proxy)))
        if not self.memo.per_push(("same-clusters", id(clusters), id(old_clusters)),
                                  lambda: self._same(clusters, old_clusters)):
            return None
        return old.with_endpoints(push, clusters, endpoints, self.memo, self._shared)

    def _hosts_changed(self, source: Endpoints, push: PushContext) -> frozenset[str]:
        """Hostnames whose endpoints differ between `source` (an earlier push's) and `push`:
        the registries keep an unchanged service's endpoints as the very tuple (see
        `PushContext.build`), so this is mostly identity, and the rest is compared by value."""

        def changed() -> frozenset[str]:
            return frozenset(host for (host, port), found in push.endpoints.items()
                             if (was := source.get((host, port))) is not found and was != found)

        return self.memo.per_push(("hosts-changed", id(source)), changed)

    def _same(self, new: dict[str, Message], old: dict[str, Message]) -> bool:
        """Whether two cluster parts encode alike (auto-mTLS, for one, follows endpoints)."""
        if new.keys() != old.keys():
            return False
        return all(new[name] is old[name] or encoded(name, new[name], self.memo).digest
                   == encoded(name, old[name], self.memo).digest for name in new)
