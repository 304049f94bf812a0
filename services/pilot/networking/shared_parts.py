"""The seam where translation is cached: each part of a proxy's config that other proxies
(or later pushes) share, what it is keyed by, and how long it is kept.

`generate` (generator.py) takes every shared part from here and hands in the builder; the
builders read the push and the proxy and know nothing of caching.  A key holds everything
its builder reads about the proxy, so proxies that differ in anything a part depends on
never share it.  The lifetimes are TranslationMemo's (memo.py):

- scope (visible services, Sidecar): type, namespace, labels; per push.
- security filters: type, namespace, labels, policy-check variant; per push.
- outbound clusters and load assignments: the visible hostnames, mTLS identity, source
  address; beside routing, and dropped by an endpoint change.
- a sidecar's own side (inbound, its security clusters): the proxy's class key; beside
  routing, and used after an endpoint change while the endpoints it read are the same.
- a sidecar's outbound listeners and routes: namespace, Sidecar, `sourceLabels` matches,
  identity, interception, bind address, telemetry view; per push.
- a gateway's listeners and routes: namespace, labels, bind address, identity; per push.
- a proxyless gRPC client's clusters and load assignments: the visible hostnames; its API
  listeners and routes: namespace, labels; per push.
- a fact about a shared part (its RDS or EDS names): the part itself; per push.

Finer caches stay with the builders that own them: each cluster is kept across pushes by
its inputs (`generator.outbound_clusters`), each route configuration's plan of hosts too
(`virtual_hosts`), and each encoded resource while it lives (xds/snapshot.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import ProxyScope
from services.pilot.model.services import Service
from services.pilot.networking import policy_checks, security
from services.pilot.networking.memo import TranslationMemo

T = TypeVar("T")


class SharedParts:
    """One push's shared parts, for the proxies `generate` is asked about."""

    def __init__(self, push: PushContext, memo: TranslationMemo) -> None:
        self.push = push
        self.memo = memo

    def scope(self, proxy: Proxy) -> ProxyScope:
        return self.memo.per_push(("scope", proxy.type, proxy.namespace, proxy.labels),
                                  lambda: ProxyScope.build(proxy, self.push))

    def security(self, proxy: Proxy) -> security.ProxySecurity:
        key = ("security", proxy.type, proxy.namespace, proxy.labels, policy_checks.variant(proxy, self.push))
        return self.memo.per_push(key, lambda: security.build(proxy, self.push))

    def outbound_clusters(self, proxy: Proxy, source: str, build: Callable[[list[Service]], T]) -> T:
        """`build(services)` for the services the proxy sees: gateways every one, a sidecar
        what exportTo and its Sidecar resource allow."""
        services = self.scope(proxy).services() if proxy.type == NodeType.SIDECAR else self.push.derived(
            "all-services", lambda: sorted(self.push.services.values(), key=lambda s: s.hostname))
        # Keyed by the list itself (derived once per push and held by it), not by a tuple of a
        # thousand hostnames rebuilt and hashed for each proxy; lists alike still share by name.
        token = self.memo.per_push(("services-token", id(services)), lambda: self.memo.beside_routing(
            ("services-named", tuple(s.hostname for s in services)), object))
        # No VirtualService reaches a cluster or its endpoints (services, DestinationRules and
        # the registry do), so a routing-only push keeps the very part the last one built.
        return self.memo.beside_routing(("outbound-clusters", token, proxy.identity, source), lambda: build(services),
                                        reads_endpoints=True)

    def sidecar_own(self, proxy: Proxy, build: Callable[[], T], valid: Callable[[T], bool]) -> T:
        """No VirtualService reaches a sidecar's own side: kept until a push changes more
        than VirtualServices and endpoints, and used while `valid` (what it read of
        endpoints unchanged)."""
        return self.memo.beside_routing(("sidecar-own", proxy.class_key), build, valid=valid)

    def sidecar_outbound(self, proxy: Proxy, scope: ProxyScope, build: Callable[[], T]) -> T:
        """Captured sidecars of one namespace share it; in proxy mode the HTTP proxy listener
        binds the workload's own address."""
        key = ("sidecar-outbound", proxy.namespace, scope.sidecar.key if scope.sidecar is not None else None,
               self._source_matches(proxy), proxy.identity, proxy.interception, proxy.bind_address,
               scope.telemetry.key)
        return self.memo.per_push(key, build)

    def gateway(self, proxy: Proxy, build: Callable[[], T]) -> T:
        return self.memo.per_push(("gateway", proxy.namespace, proxy.labels, proxy.bind_address, proxy.identity),
                                  build)

    def proxyless_clusters(self, services: list[Service], build: Callable[[], T]) -> T:
        return self.memo.per_push(("grpc-clusters", tuple(s.hostname for s in services)), build)

    def proxyless_listeners(self, proxy: Proxy, build: Callable[[], T]) -> T:
        """Routes read the client's namespace (short names, sourceNamespace) and labels
        (sourceLabels)."""
        return self.memo.per_push(("grpc-listeners", proxy.namespace, proxy.labels), build)

    def fact(self, part: dict[str, Any], tag: str, derive: Callable[[dict[str, Any]], T]) -> T:
        """Something derived from a shared part, once per push however many proxies hold it."""
        return self.memo.of(part, tag, lambda: derive(part))

    def _source_matches(self, proxy: Proxy) -> tuple[bool, ...]:
        """A sidecar's labels matter to its outbound config only through the Sidecar resource
        selecting it and VirtualServices' `sourceLabels`: sidecars alike in those share it."""
        return tuple(proxy.matches(dict(selector)) for selector in self.push.source_selectors())
