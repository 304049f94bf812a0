"""One ADS stream (state of the world): what was sent, what was ACKed, what comes next.

Pure bookkeeping: requests and snapshots in, response bytes out, no I/O, so the
protocol rules are unit-tested without a network.  The rules (see docs/xds-notes.md):
- a request with `error_detail` for the latest nonce is a NACK: recorded, never resent;
- a request whose nonce is not the latest for its type is stale and ignored;
- a request without a nonce (a new subscription or a reconnect) is always answered;
- an ACK that changes EDS/RDS resource names is answered with the new names;
- a push sends CDS -> EDS -> LDS -> RDS, each only if its content changed, EDS always
  after a CDS change, and keeps clusters that ACKed routes still use until the new
  routes are ACKed (make before break).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from operator import attrgetter
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE, short_type
from services.pilot.model.proxy import Proxy
from services.pilot.xds.requests import ReadRequest
from services.pilot.xds.snapshot import (
    EncodedResource,
    Selection,
    Snapshot,
    names_within,
    part_changes,
    response_bytes,
    shared_response,
)
from services.pilot.xds.stream_state import ROUTING_TYPES, WILDCARD_TYPES, BaseConnection, Nack, Observer, Watch

# Observer, Nack and Watch moved to stream_state (shared with delta); importers of this module keep working.
__all__ = ["WILDCARD_TYPES", "Connection", "Nack", "Observer", "Watch"]


def same_names(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Whether two subscriptions name the same resources.  Streams hold the snapshot's own
    sets (see `_requested`), so this is usually one set against itself, which `==` would
    still walk, a thousand names at a time, for every stream on every push."""
    return a is b or a == b


class Connection(BaseConnection[discovery_pb2.DiscoveryRequest]):
    api = "GRPC"

    def __init__(self, conn_id: str, proxy: Proxy, *, observer: Observer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(conn_id, proxy, observer=observer, clock=clock)
        # Per type: the raw names its last request carried, and what they came to.
        self._last_names: dict[str, tuple[bytes, frozenset[str] | None]] = {}

    # -- requests -------------------------------------------------------------------

    def receive(self, read: ReadRequest, snapshot: Snapshot | None) -> list[bytes]:
        """A request as `read_request` read it off the wire.  Its names are decoded only
        when neither this stream's last request of the type nor another stream's request in
        this push carried them byte for byte (an ACK repeats every name the proxy subscribes
        to, and a thousand proxies subscribe to the same thousand clusters: see
        services/pilot/xds/requests.py)."""
        if read.span is None:
            return self.handle_request(read.message, snapshot)
        type_url = read.message.type_url
        last = self._last_names.get(type_url)
        if last is not None and read.names_are(last[0]):
            return self._answer(read.message, last[1], snapshot)
        raw_names = read.names  # new names: cut out now, kept while they hold
        assert raw_names is not None  # `span` was checked above
        key = ("request-names", type_url, raw_names)
        if snapshot is not None and (found := snapshot.shared.get(key)) is not None:
            raw, decoded = found
            held = snapshot.known_names(decoded)
            self._last_names[type_url] = (raw, held)
            return self._answer(read.message, held, snapshot)
        whole = read.whole()
        names = self._requested(whole, snapshot)
        if read.names_stand_alone(whole):
            entry = (raw_names, names)
            if snapshot is not None and names:
                # What a non-empty subscription comes to depends on its names and type alone
                # (`_names`), so the streams of this push that send the same bytes share one
                # copy of them (~50 KB for 1,000 EDS names) and one decoding.
                entry = snapshot.shared.setdefault(key, entry)
            self._last_names[type_url] = entry
        return self._answer(whole, names, snapshot)

    def handle_request(self, request: discovery_pb2.DiscoveryRequest, snapshot: Snapshot | None) -> list[bytes]:
        return self._answer(request, self._requested(request, snapshot), snapshot)

    def _answer(self, request: discovery_pb2.DiscoveryRequest, names: frozenset[str] | None,
                snapshot: Snapshot | None) -> list[bytes]:
        """Answer `request`, which subscribes to `names` (None: wildcard)."""
        if snapshot is not None and not request.response_nonce:
            self.snapshot_version = snapshot.version
        watch = self.watches.get(request.type_url)
        if watch is None:
            self._log.warning("request for an unsupported type", type_url=request.type_url)
            watch = self.watches[request.type_url] = Watch(request.type_url)
        if request.response_nonce and request.response_nonce != watch.nonce:
            self._log.debug("stale request ignored", type=short_type(watch.type_url), nonce=request.response_nonce)
            return []
        if request.HasField("error_detail") and request.response_nonce:
            self._nack(watch, request)
            if names != watch.names:
                watch.names = names
            return []
        if request.response_nonce:
            self._ack(watch, request)
            out: list[bytes] = []
            # Identity first: an ACK repeating the stream's names hands back the very set it held.
            if names is not watch.names and names != watch.names and \
                    (watch.type_url not in WILDCARD_TYPES or names is not None):
                watch.names = names
                # Envoy may have been sent these ahead of asking; a client that names everything
                # it uses (proxyless gRPC) was not, and forgets what it unsubscribed from.
                already_sent = names is not None and names <= watch.sent.keys() and \
                    snapshot is not None and watch.version_sent == snapshot.version and \
                    not self._names_what_it_uses(watch.type_url)
                if snapshot is not None and not already_sent:
                    out.extend(self._send(watch, snapshot, trigger="subscription", force=True))
            if watch.type_url in ROUTING_TYPES and snapshot is not None:
                out.extend(self._release_unused_clusters(snapshot))
            return out
        # No nonce: a new subscription, or Envoy reconnecting with its last version.
        watch.subscribed = True
        watch.names = names
        if request.version_info:
            watch.version_acked = request.version_info
        if snapshot is None:
            return []
        return self._send(watch, snapshot, trigger="request", force=True)

    def _requested(self, request: discovery_pb2.DiscoveryRequest, snapshot: Snapshot | None) -> frozenset[str] | None:
        names = self._names(request)
        if snapshot is not None and names is not None:
            names = snapshot.known_names(names)
        return names

    def _names(self, request: discovery_pb2.DiscoveryRequest) -> frozenset[str] | None:
        names = frozenset(request.resource_names)
        if request.type_url in WILDCARD_TYPES and (not names or names == {"*"}):
            # Wildcard, unless the client named resources before: then it now wants none.
            return frozenset() if not names and self._names_what_it_uses(request.type_url) else None
        return names

    def _names_what_it_uses(self, type_url: str) -> bool:
        """Whether the client subscribes to listeners and clusters by name (proxyless gRPC;
        Envoy's are wildcard), and so to all it needs of their routes and endpoints."""
        parent = {ENDPOINT_TYPE: CLUSTER_TYPE, ROUTE_TYPE: LISTENER_TYPE}.get(type_url, type_url)
        watch = self.watches.get(parent)
        return watch is not None and watch.subscribed and watch.names is not None

    def _ack(self, watch: Watch, request: discovery_pb2.DiscoveryRequest) -> None:
        if self._record_ack(watch, request.version_info):
            # A SotW response replaces the whole type: what it named is what Envoy uses.
            watch.refs_acked = watch.refs_sent

    def _nack(self, watch: Watch, request: discovery_pb2.DiscoveryRequest) -> None:
        self._record_nack(watch, request.response_nonce, request.error_detail.message,
                          acked_version=request.version_info)

    # -- pushes ---------------------------------------------------------------------

    def push(self, snapshot: Snapshot, trigger: str = "config") -> list[bytes]:
        out: list[bytes] = []
        sent_types: set[str] = set()
        for type_url in PUSH_ORDER:
            watch = self.watches[type_url]
            if not watch.subscribed:
                continue
            # After new clusters or listeners, send what Envoy is about to subscribe to,
            # before it asks; and always EDS after CDS: a warming cluster needs its
            # endpoints even when they did not change (Envoy #13009).
            after_parent = (type_url == ENDPOINT_TYPE and CLUSTER_TYPE in sent_types) or (
                type_url == ROUTE_TYPE and LISTENER_TYPE in sent_types)
            sent = self._send(watch, snapshot, trigger=trigger, force=type_url == ENDPOINT_TYPE and after_parent,
                              after_parent=after_parent)
            if sent:
                sent_types.add(type_url)
            out.extend(sent)
        self.snapshot_version = snapshot.version
        return out

    def _kept_clusters(self, snapshot: Snapshot) -> dict[str, EncodedResource]:
        """Clusters no longer generated but still named by listeners or routes Envoy may be
        using: the ACKed ones, and the ones sent but not yet ACKed (Envoy applies responses
        in order, so those are live until the next listeners or routes replace them)."""
        desired = snapshot.resources.get(CLUSTER_TYPE, {})
        still_used = self._clusters_named()
        previous = self.watches[CLUSTER_TYPE].sent
        return {name: previous[name] for name in still_used - desired.keys() if name in previous}

    def _targets(self, watch: Watch, snapshot: Snapshot, after_parent: bool) -> frozenset[str] | None:
        if watch.type_url in WILDCARD_TYPES or not after_parent or self._names_what_it_uses(watch.type_url):
            return watch.names
        return snapshot.eds_clusters if watch.type_url == ENDPOINT_TYPE else snapshot.route_names

    def _send(self, watch: Watch, snapshot: Snapshot, *, trigger: str, force: bool,
              after_parent: bool = False) -> list[bytes]:
        """The response `watch`'s type needs now, if any.  `force`: answer even what looks
        unchanged or was rejected (a request without a nonce, EDS right after CDS)."""
        targets = self._targets(watch, snapshot, after_parent)
        source = (snapshot.resources.get(watch.type_url), targets)
        if not force and watch.sent_from is not None and watch.sent_from[0] is source[0] \
                and same_names(watch.sent_from[1], targets):
            # The very dict (and names) the last response was drawn from: nothing changed.
            return []
        if not force and watch.sent and watch.type_url not in WILDCARD_TYPES and not self.proxy.proxyless:
            selected = self._changes_only(watch, snapshot, targets, source)
            refs = dict(watch.refs_sent)
        else:
            selected = self._whole_set(watch, snapshot, targets, source, force=force)
            refs = {}
        if selected is None:
            return []
        return [self._respond(watch, snapshot, selected, refs, trigger)]

    @staticmethod
    def _rejected(watch: Watch, snapshot: Snapshot) -> bool:
        """Whether the proxy NACKed this snapshot's version of the type: never sent again."""
        return watch.last_nack is not None and watch.last_nack.version == snapshot.version \
            and watch.version_sent == snapshot.version

    def _changes_only(self, watch: Watch, snapshot: Snapshot, targets: frozenset[str] | None,
                      source: tuple[object, frozenset[str] | None]) -> Selection | None:
        """EDS or RDS for Envoy, after its first response: only the resources that differ
        from what it holds.  Envoy applies such a response to the resources it carries and
        keeps the rest (unlike CDS/LDS, where absence means removal): one endpoint change
        moves one load assignment, not a thousand.  gRPC clients get every one."""
        available = snapshot.resources.get(watch.type_url, {})
        selected, forget = self._changed(watch, available, snapshot.shared, targets)
        watch.sent_from = source
        if selected and self._rejected(watch, snapshot):
            selected = []
        if selected or forget:
            self._hold(watch, available, snapshot.shared, targets, selected, forget)
        return Selection.of(selected) if selected else None

    def _whole_set(self, watch: Watch, snapshot: Snapshot, targets: frozenset[str] | None,
                   source: tuple[object, frozenset[str] | None], *, force: bool) -> Selection | None:
        """Every resource of the type the proxy should hold (CDS and LDS always; the first
        EDS and RDS; everything for gRPC clients), unless it would change nothing."""
        selection = snapshot.select(watch.type_url, targets)
        if not selection.resources and watch.type_url not in WILDCARD_TYPES:
            # An empty EDS/RDS response changes nothing in Envoy, and when Envoy no longer
            # watches the type at all it ignores the response and never ACKs it.
            return None
        # Recorded before the checks below: what they find unchanged stays unchanged.
        watch.sent_from = source
        if watch.type_url == CLUSTER_TYPE:
            kept = self._kept_clusters(snapshot)
            if kept:
                selection = Selection.of(sorted([*selection.resources, *kept.values()], key=attrgetter("name")))
                # Kept clusters go once the routes are ACKed, whatever the snapshot.
                watch.sent_from = None
        if not force and self._rejected(watch, snapshot):
            return None
        if not force and selection.digest == watch.digest_sent:
            return None
        watch.digest_sent = selection.digest
        whole = source[0]
        if isinstance(whole, dict) and len(selection.resources) == len(whole) and watch.sent_from is not None:
            # Everything the snapshot has, as it has it: share its dict.
            watch.sent, watch.sent_owned = whole, False
        else:
            watch.sent, watch.sent_owned = {r.name: r for r in selection.resources}, True
        return selection

    def _respond(self, watch: Watch, snapshot: Snapshot, selection: Selection,
                 refs: dict[str, frozenset[str]], trigger: str) -> bytes:
        """Record `selection` as sent (awaiting its ACK; the clusters it names in flight)
        and encode the response."""
        selected = selection.resources
        if watch.type_url in ROUTING_TYPES:
            # Only listeners and routes name clusters (make before break).
            for r in selected:
                refs[r.name] = used = snapshot.references.get(r.name, frozenset())
                watch.note_in_flight(used)
        watch.refs_sent = refs
        shared = shared_response(snapshot.shared, snapshot.version, watch.type_url, selected, digest=selection.digest)
        if shared is None or shared.nonce == watch.nonce:
            # Not shared (yet), or this stream's last response was this very one (asked for
            # again): a second send under one nonce would let the first one's ACK settle it.
            nonce = self._record_send(watch, snapshot.version, trigger, resources=len(selected))
            return response_bytes(snapshot.version, watch.type_url, selected, nonce)
        self._record_send(watch, snapshot.version, trigger, nonce=shared.nonce, resources=len(selected))
        return shared.body

    @staticmethod
    def _changed(watch: Watch, available: dict[str, EncodedResource], shared: dict[Hashable, Any],
                 targets: frozenset[str] | None) -> tuple[list[EncodedResource], list[str]]:
        """What of `targets` the proxy does not hold as `available` has it, by name; and
        what it holds that it no longer should (gone from the snapshot, or unsubscribed)."""
        held = watch.sent
        last = watch.sent_from
        changed: list[EncodedResource] = []
        if last is not None and isinstance(last[0], dict) and same_names(last[1], targets):
            # The proxy holds what the last part had for these names: only how the part
            # changed matters, and that is worked out once for every stream that had it.
            names, gone = part_changes(shared, last[0], available)
            for name in names:
                resource = available[name]
                if (targets is None or name in targets) and held.get(name) is not resource:
                    changed.append(resource)
            forget = [name for name in gone if name in held]
        else:
            present = 0
            for name in available if targets is None else targets:
                current = available.get(name)
                if current is None:
                    continue
                present += 1
                previous = held.get(name)
                if previous is not current and (previous is None or previous.digest != current.digest):
                    changed.append(current)
            forget = []
            if len(held) > present:
                wanted = {n for n in (available if targets is None else targets) if n in available}
                forget = [name for name in held if name not in wanted]
        changed.sort(key=attrgetter("name"))
        return changed, forget

    @staticmethod
    def _hold(watch: Watch, available: dict[str, EncodedResource], shared: dict[Hashable, Any],
              targets: frozenset[str] | None, sending: list[EncodedResource], forget: list[str]) -> None:
        """Record what the proxy holds once it has `sending` and dropped `forget`."""
        if targets is None or names_within(shared, available, targets):
            # Then it holds the snapshot's dict exactly: share it rather than copy it.
            watch.sent, watch.sent_owned = available, False
        else:
            if not watch.sent_owned:
                watch.sent, watch.sent_owned = dict(watch.sent), True
            for name in forget:
                del watch.sent[name]
            watch.sent.update((r.name, r) for r in sending)
        if forget:
            watch.refs_sent = {k: v for k, v in watch.refs_sent.items() if k in watch.sent}
        # What the proxy holds no longer matches a full response's digest.
        watch.digest_sent = None

    def _release_unused_clusters(self, snapshot: Snapshot) -> list[bytes]:
        """Once the new listeners and routes are ACKed, drop clusters only old ones used."""
        clusters = self.watches[CLUSTER_TYPE]
        if not self._may_release_clusters():
            return []
        desired = snapshot.resources.get(CLUSTER_TYPE, {})
        # Holding the snapshot's own dict (the usual case) is holding nothing extra.
        if clusters.sent is desired or not clusters.sent.keys() - desired.keys():
            return []
        return self._send(clusters, snapshot, trigger="cleanup", force=False)
