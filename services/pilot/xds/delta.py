"""One delta ADS stream (incremental xDS): what the proxy holds, and what to send it next.

Pure bookkeeping like `connection.py`: requests and snapshots in, response bytes out, no
I/O.  The rules (Envoy's incremental xDS protocol, and docs/xds-notes.md):
- subscriptions per type: CDS and LDS are wildcard when their first request names nothing
  (the legacy form Envoy sends) or names `*`; EDS and RDS follow `resource_names_subscribe`
  and `resource_names_unsubscribe`.  An unsubscribed resource is forgotten, as Envoy forgets
  it: subscribing again sends it again;
- a resource's version is its content digest; a response carries only the resources whose
  version differs from what the proxy holds and, for wildcard subscriptions, the names of
  those it holds that are gone (`removed_resources`).  While the proxy holds what the
  last snapshot had (`DeltaWatch.held_as`), that is how the snapshot's dict changed,
  worked out once per push for every stream; otherwise it is found name by name;
- a reconnect's `initial_resource_versions` is what the proxy holds: resources it has in
  the current version are not resent, wildcard resources that are gone are removed;
- EDS and RDS resources are never removed explicitly: Envoy ignores such removals (with an
  error log for RDS, envoyproxy/envoy#32823), and unsubscribes them itself once the cluster
  or listener that named them is gone;
- the first request of each type is answered even when there is nothing to send: Envoy's
  initialisation waits for that answer;
- a request with the latest nonce ACKs it, or NACKs it with `error_detail`: the rejection is
  recorded and the rejected resources are not resent until their content changes.  An
  older nonce is stale: its ACK/NACK is ignored, its subscription changes still apply;
- CDS -> EDS -> LDS -> RDS.  Clusters that CDS updated get their EDS again even when it did
  not change (an updated cluster warms until it has endpoints, Envoy #13009), and clusters
  it added get theirs before Envoy subscribes (routes to a warming cluster answer 503);
- make before break, as in SotW: a cluster that ACKed (or in-flight) listeners and routes
  still name is removed only once they are replaced and the replacement is ACKed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from envoy.service.discovery.v3 import discovery_pb2

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE, short_type
from services.pilot.model.proxy import Proxy
from services.pilot.xds.snapshot import (
    EncodedResource,
    Selection,
    Snapshot,
    delta_response_bytes,
    part_changes,
    shared_response,
)
from services.pilot.xds.stream_state import ROUTING_TYPES, WILDCARD_TYPES, BaseConnection, Observer, Watch

__all__ = ["WILDCARD", "DeltaConnection", "DeltaWatch"]

WILDCARD = "*"
# A type the snapshot lacks: one empty dict, so a stream recognises it as the last one.
_NOTHING: dict[str, EncodedResource] = {}
_NAME = attrgetter("name")


@dataclass
class DeltaWatch(Watch):
    """A `Watch` (what debug endpoints read: `sent` is everything the proxy holds) plus the
    per-resource state delta needs."""

    wildcard: bool = False
    # Resources subscribed by name (beside the wildcard, if any): the snapshot's own set
    # when that is what the proxy subscribes to (`Snapshot.known_names`), as Envoy's EDS and
    # RDS subscriptions are.  Each stream kept its own before: ~160 KB of EDS names apiece.
    resource_names: frozenset[str] = frozenset()
    # What the proxy holds: name -> content digest (b"" for a version pilot cannot read).
    held: dict[str, bytes] = field(default_factory=dict)
    # Listeners and routes a reconnecting proxy reported, with the digest it reported, until
    # pilot replaces them: which clusters they name is known only if that digest is current.
    refs_unknown: dict[str, bytes] = field(default_factory=dict)
    # How the responses since the last ACK change `refs_acked` (None: the resource goes).
    refs_pending: dict[str, frozenset[str] | None] = field(default_factory=dict)
    # The snapshot dict `held` is up to date with: every resource of it the subscription
    # selects is held at its digest and, under a wildcard, nothing else is held.  While it
    # is set, the next push needs only how that dict changed (worked out once per push for
    # every stream), not a look at each of the thousand names; anything else that changes
    # `held` or the subscription clears it.
    held_as: dict[str, EncodedResource] | None = None


class DeltaConnection(BaseConnection[discovery_pb2.DeltaDiscoveryRequest]):
    api = "DELTA_GRPC"

    def __init__(self, conn_id: str, proxy: Proxy, *, observer: Observer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(conn_id, proxy, observer=observer, clock=clock)
        # The same watches, typed for delta; `watches` is what debug endpoints read.
        self._watches: dict[str, DeltaWatch] = {t: DeltaWatch(t) for t in PUSH_ORDER}
        self.watches = dict(self._watches)
        # Clusters CDS updated whose endpoints go out with the next EDS response.
        self._eds_refresh: set[str] = set()
        # The proxy reconnected holding clusters: until it has said which listeners and
        # routes it holds, any of them may be in use.
        self._reconnected = False

    # -- requests -------------------------------------------------------------------

    def handle_request(self, request: discovery_pb2.DeltaDiscoveryRequest,
                       snapshot: Snapshot | None) -> list[bytes]:
        watch = self._watches.get(request.type_url)
        if watch is None:
            self._log.warning("request for an unsupported type", type_url=request.type_url)
            watch = self._watches[request.type_url] = DeltaWatch(request.type_url)
            self.watches[request.type_url] = watch
        first = not watch.subscribed
        if first and snapshot is not None:
            self.snapshot_version = snapshot.version
        nonce = request.response_nonce
        if nonce and nonce != watch.nonce:
            self._log.debug("stale nonce: only its subscription changes apply", type=short_type(watch.type_url),
                            nonce=nonce)
        elif nonce and request.HasField("error_detail"):
            self._nack(watch, request)
        elif nonce:
            self._ack(watch)
        subscribed_more = self._subscribe(watch, request, first, snapshot)
        if snapshot is None or watch.type_url not in PUSH_ORDER:
            return []
        out: list[bytes] = []
        if first or subscribed_more:
            out.extend(self._send(watch, snapshot, trigger="request" if first else "subscription"))
            if watch.type_url == CLUSTER_TYPE and self._watches[ENDPOINT_TYPE].subscribed:
                out.extend(self._send(self._watches[ENDPOINT_TYPE], snapshot, trigger="request"))
        out.extend(self._release_unused_clusters(snapshot))
        return out

    def _subscribe(self, watch: DeltaWatch, request: discovery_pb2.DeltaDiscoveryRequest, first: bool,
                   snapshot: Snapshot | None) -> bool:
        """Apply the request's subscription changes; whether it asks for anything new."""
        subscribe = set(request.resource_names_subscribe)
        unsubscribe = set(request.resource_names_unsubscribe)
        if not (first or subscribe or unsubscribe):
            # An ACK or NACK: a thousand EDS names stay as they are.
            return False
        watch.held_as = None
        more = False
        if first:
            watch.subscribed = True
            watch.wildcard = not subscribe and watch.type_url in WILDCARD_TYPES
            self._take_initial_versions(watch, request)
        if WILDCARD in subscribe:
            subscribe.discard(WILDCARD)
            more = not watch.wildcard
            watch.wildcard = True
        if WILDCARD in unsubscribe:
            unsubscribe.discard(WILDCARD)
            watch.wildcard = False
            # Envoy drops what it held through the wildcard alone.
            for name in [n for n in watch.held if n not in watch.resource_names and n not in subscribe]:
                self._forget(watch, name)
        more = more or not subscribe <= watch.resource_names
        if more or not unsubscribe.isdisjoint(watch.resource_names):
            names = (watch.resource_names | subscribe) - unsubscribe
            watch.resource_names = names if snapshot is None else snapshot.known_names(names)
        if not watch.wildcard:
            # Under a wildcard Envoy keeps an unsubscribed resource, and so does this record.
            for name in unsubscribe:
                self._forget(watch, name)
        watch.names = None if watch.wildcard else watch.resource_names
        return more

    def _take_initial_versions(self, watch: DeltaWatch, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        """A reconnecting proxy's first request lists what it holds."""
        for name, version in request.initial_resource_versions.items():
            digest = _digest(version)
            watch.held[name] = digest
            if watch.type_url in ROUTING_TYPES:
                watch.refs_unknown[name] = digest
        if watch.type_url == CLUSTER_TYPE and watch.held:
            self._reconnected = True

    def _forget(self, watch: DeltaWatch, name: str) -> None:
        watch.held_as = None
        watch.held.pop(name, None)
        watch.sent.pop(name, None)
        # What it named stays in `refs_in_flight` until the next ACK, like anything sent.
        watch.refs_acked.pop(name, None)
        watch.refs_pending.pop(name, None)
        watch.refs_unknown.pop(name, None)

    def _ack(self, watch: DeltaWatch) -> None:
        if not self._record_ack(watch, watch.version_sent):
            return
        # A delta response changes only the resources it names (or removes).
        for name, refs in watch.refs_pending.items():
            watch.refs_unknown.pop(name, None)
            if refs is None:
                watch.refs_acked.pop(name, None)
            else:
                watch.refs_acked[name] = refs
        watch.refs_pending.clear()

    def _nack(self, watch: DeltaWatch, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        # Envoy applies a delta response resource by resource and may have kept either form
        # of each: until an ACK settles it, both may name clusters in use.
        for name, refs in watch.refs_pending.items():
            if refs is not None:
                watch.refs_acked[name] = watch.refs_acked.get(name, frozenset()) | refs
        watch.refs_pending.clear()
        # The rejected resources stay recorded as held, so they are not resent until they change.
        self._record_nack(watch, request.response_nonce, request.error_detail.message)

    # -- pushes ---------------------------------------------------------------------

    def push(self, snapshot: Snapshot, trigger: str = "config") -> list[bytes]:
        out: list[bytes] = []
        for type_url in PUSH_ORDER:
            watch = self._watches[type_url]
            if watch.subscribed:
                out.extend(self._send(watch, snapshot, trigger=trigger))
        self.snapshot_version = snapshot.version
        return out

    def _send(self, watch: DeltaWatch, snapshot: Snapshot, *, trigger: str) -> list[bytes]:
        available = snapshot.resources.get(watch.type_url, _NOTHING)
        held = watch.held
        refresh: set[str] = set()
        ahead: list[EncodedResource] = []
        if watch.type_url == ENDPOINT_TYPE:
            refresh, self._eds_refresh = self._eds_refresh, set()
            if watch.sends and not watch.wildcard:
                # Endpoints of clusters CDS just added go before Envoy asks, as in SotW: the
                # new cluster registered its EDS watch when Envoy applied CDS, and routes that
                # arrive while it still warms would answer 503.  They stay out of `held`, so
                # Envoy's subscription gets them again: Envoy drops resources no watch wants
                # (a rejected cluster has none), and pilot cannot tell.
                ahead = [available[n] for n in refresh - watch.resource_names if n in available]
        selection: Selection | None = None
        if watch.held_as is not None and watch.sends:
            updates, removed = self._changes_since_held(watch, watch.held_as, available, snapshot, refresh)
        elif not held:
            # A fresh stream gets all it subscribes to: the push's selection, which every
            # other fresh stream subscribing alike shares (sorted and hashed once).
            selection = snapshot.select(watch.type_url, None if watch.wildcard else watch.resource_names)
            updates, removed = list(selection.resources), []
        else:
            updates, removed = self._changes_by_name(watch, snapshot, available, refresh)
        gone = len(removed)
        if removed and watch.type_url == CLUSTER_TYPE:
            removed = self._removable(removed, snapshot)
        # Clusters kept for make before break are held beyond the snapshot's.
        settled = available if len(removed) == gone else None
        if not updates and not removed and not ahead and watch.sends:
            watch.held_as = settled
            return []
        # Sending exactly a selection: in name order already, and its digest made (in a sync,
        # a thousand streams each take a thousand clusters and load assignments).
        whole = selection if selection is not None and not ahead else None
        if whole is None:
            updates.sort(key=_NAME)
            ahead.sort(key=_NAME)
        sending = [*updates, *ahead]
        shared = shared_response(snapshot.shared, snapshot.version, watch.type_url, sending, removed,
                                 digest=whole.digest if whole is not None else None)
        if shared is not None and shared.nonce == watch.nonce:
            # This stream's last response was this very one: a second send needs its own nonce.
            shared = None
        nonce = self._record_send(watch, snapshot.version, trigger, nonce=shared.nonce if shared else None,
                                  resources=len(sending), removed=len(removed))
        for resource in updates:
            held[resource.name] = resource.digest
            watch.sent[resource.name] = resource
        for name in removed:
            del held[name]
            watch.sent.pop(name, None)
        watch.held_as = settled
        if watch.type_url in ROUTING_TYPES:
            self._note_refs(watch, snapshot, updates, removed)
        if watch.type_url == CLUSTER_TYPE:
            self._eds_refresh.update(map(_NAME, updates))
        if shared is not None:
            return [shared.body]
        return [delta_response_bytes(snapshot.version, watch.type_url, sending, removed, nonce)]

    def _changes_by_name(self, watch: DeltaWatch, snapshot: Snapshot, available: dict[str, EncodedResource],
                         refresh: set[str]) -> tuple[list[EncodedResource], list[str]]:
        """What differs from what the proxy holds, name by name, once it holds something: a
        reconnect, a changed subscription (a fresh stream is sent its selection whole)."""
        held = watch.held
        names: Iterable[str] = available if watch.wildcard else watch.resource_names & available.keys()
        if not watch.sends:
            # A reconnect: what the proxy holds in the current version is known content.
            watch.sent.update({n: available[n] for n in names if held.get(n) == available[n].digest})
        updates = [available[n] for n in names if held.get(n) != available[n].digest or n in refresh]
        removed = [n for n in held if n not in available] if watch.wildcard else []
        return updates, removed

    @staticmethod
    def _changes_since_held(watch: DeltaWatch, old: dict[str, EncodedResource], available: dict[str, EncodedResource],
                            snapshot: Snapshot, refresh: set[str]) -> tuple[list[EncodedResource], list[str]]:
        """What differs from what the proxy holds, when it holds `old` (its `held_as`) as it
        was: how that dict became `available`, worked out once for every stream."""
        held = watch.held
        if old is available:
            changed: list[str] = []
            gone: list[str] = []
        else:
            changed, gone = part_changes(snapshot.shared, old, available)
        wanted = (lambda n: True) if watch.wildcard else watch.resource_names.__contains__
        # `held` may still have a name the snapshot dropped and brought back unchanged.
        updates = [available[n] for n in changed if wanted(n) and held.get(n) != available[n].digest]
        if refresh:
            listed = {r.name for r in updates}
            updates += [available[n] for n in refresh if n in available and n not in listed and wanted(n)]
        # Under a wildcard the proxy held nothing outside `old`.
        removed = [n for n in gone if n in held] if watch.wildcard else []
        return updates, removed

    @staticmethod
    def _note_refs(watch: DeltaWatch, snapshot: Snapshot, updates: list[EncodedResource],
                   removed: list[str]) -> None:
        for resource in updates:
            refs = snapshot.references.get(resource.name, frozenset())
            watch.refs_pending[resource.name] = refs
            watch.note_in_flight(refs)
        for name in removed:
            watch.refs_pending[name] = None

    # -- make before break ----------------------------------------------------------

    def _clusters_in_use(self, snapshot: Snapshot) -> set[str] | None:
        """Clusters that listeners and routes the proxy may be using name: the ACKed ones
        and those sent since (Envoy applies responses in order).  None: unknown, after a
        reconnect, until the proxy has reported (and pilot has replaced) what it holds."""
        listeners, routes = self._watches[LISTENER_TYPE], self._watches[ROUTE_TYPE]
        if self._reconnected and not (listeners.subscribed and (routes.subscribed or not snapshot.route_names)):
            return None
        used = self._clusters_named()
        for watch in (listeners, routes):
            available = snapshot.resources.get(watch.type_url, {})
            for name, digest in watch.refs_unknown.items():
                current = available.get(name)
                if current is None or current.digest != digest:
                    return None
                used.update(snapshot.references.get(name, frozenset()))
        return used

    def _removable(self, gone: list[str], snapshot: Snapshot) -> list[str]:
        used = self._clusters_in_use(snapshot)
        return [] if used is None else [name for name in gone if name not in used]

    def _release_unused_clusters(self, snapshot: Snapshot) -> list[bytes]:
        """Once the new listeners and routes are ACKed (or old routes unsubscribed), drop the
        clusters only the old ones used."""
        clusters = self._watches[CLUSTER_TYPE]
        if not clusters.wildcard or not self._may_release_clusters():
            return []
        available = snapshot.resources.get(CLUSTER_TYPE, _NOTHING)
        if clusters.held_as is available:
            # It holds nothing beyond the snapshot's clusters: nothing to release.
            return []
        if not self._removable([n for n in clusters.held if n not in available], snapshot):
            return []
        return self._send(clusters, snapshot, trigger="cleanup")


def _digest(version: str) -> bytes:
    """A version pilot sent (a hex digest) as the digest; b"" (never current) otherwise."""
    try:
        return bytes.fromhex(version)
    except ValueError:
        return b""
