"""What every ADS stream keeps, whichever protocol it speaks (state of the world or delta),
and the rules both follow, recorded here once.

Per xDS type a `Watch`: what was sent and ACKed, the last NACK, when.  Per stream its sync
status.  The debug endpoints, `mizzenctl proxy-status` and the metrics read only these, so
SotW and delta streams look the same to them.

Shared by both protocols (`BaseConnection`), each enforced where it is written:
- a send awaits its ACK under a new nonce; a request with an older nonce is stale
  (`_record_send`).  Streams sending the same response (SotW or delta) share it, nonce
  included (`snapshot.shared_response`), so a nonce is new to its stream, not to pilot;
- an ACK settles every response sent before it (`_record_ack`); a NACK records the rejected
  version, which the protocol's send never offers again (`_record_nack`);
- make before break: a cluster that ACKed or in-flight listeners and routes name stays
  (`_clusters_named`), and goes only once no listener or route response awaits its ACK
  (`_may_release_clusters`).
What each protocol sends, and how it knows what the proxy holds, stays in its own module:
`connection.py` (whole types, or changed EDS/RDS resources) and `delta.py` (per-resource
digests).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from libs.envoy import CLUSTER_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE, short_type
from services.pilot.model.proxy import Proxy
from services.pilot.xds.snapshot import EncodedResource, Snapshot

__all__ = ["ROUTING_TYPES", "WILDCARD_TYPES", "AnyConnection", "BaseConnection", "Nack", "Observer", "Watch"]

log = structlog.get_logger(__name__)

WILDCARD_TYPES = (CLUSTER_TYPE, LISTENER_TYPE)
# Types whose resources name the clusters traffic is routed to (see `Snapshot.references`).
ROUTING_TYPES = (LISTENER_TYPE, ROUTE_TYPE)
# How many responses' cluster sets a watch holds apart while no ACK comes (see `note_in_flight`).
_MOST_HELD_IN_FLIGHT = 8

RequestT = TypeVar("RequestT")


@dataclass(frozen=True)
class Nack:
    version: str
    nonce: str
    message: str
    at: float


@dataclass
class Watch:
    type_url: str
    subscribed: bool = False
    # None: every resource of the type (wildcard).
    names: frozenset[str] | None = None
    nonce: str = ""
    version_sent: str = ""
    version_acked: str = ""
    digest_sent: bytes | None = None
    # The snapshot dict (and the names) the last response of this type was drawn from: the
    # same dict again means nothing to send, without looking at a thousand resources.
    sent_from: tuple[object, frozenset[str] | None] | None = None
    # The resources the proxy holds as pilot sent them, by name (SotW: the last response).
    sent: dict[str, EncodedResource] = field(default_factory=dict)
    # False while `sent` is a snapshot's own dict (shared, not to be changed in place).
    sent_owned: bool = True
    refs_sent: dict[str, frozenset[str]] = field(default_factory=dict)
    refs_acked: dict[str, frozenset[str]] = field(default_factory=dict)
    # The clusters named by each response sent since the last ACK: Envoy may be using any
    # of them (it applies responses in order), so none may go yet.  The snapshot's own sets,
    # held rather than merged: a route configuration names a thousand clusters, and copying
    # them into one set cost each stream ~20 us on every routing push (see `note_in_flight`).
    refs_in_flight: list[frozenset[str]] = field(default_factory=list)
    awaiting_ack: bool = False
    last_nack: Nack | None = None
    sent_at: float = 0.0
    acked_at: float = 0.0
    sends: int = 0

    def note_in_flight(self, named: frozenset[str]) -> None:
        """A response naming the clusters `named` is sent.  A proxy that goes on without an
        ACK gets its sets merged once they pass a few, so they never pile up."""
        if not named:
            return
        self.refs_in_flight.append(named)
        if len(self.refs_in_flight) > _MOST_HELD_IN_FLIGHT:
            self.refs_in_flight = [frozenset().union(*self.refs_in_flight)]


class Observer:
    """What a connection reports: pushes, ACKs, NACKs (pilot wires metrics here)."""

    def sent(self, proxy: Proxy, type_url: str, version: str, trigger: str) -> None: ...

    def acked(self, proxy: Proxy, type_url: str, version: str, latency_s: float) -> None: ...

    def nacked(self, proxy: Proxy, type_url: str, version: str, message: str) -> None: ...

    def synced(self, proxy: Proxy, version: str, connected_at: float, at: float) -> None:
        """The stream ACKed everything its snapshot `version` sent it (see `note_sync`)."""


class BaseConnection(ABC, Generic[RequestT]):
    """One ADS stream's bookkeeping: requests and snapshots in, response bytes out, no I/O."""

    # "GRPC" or "DELTA_GRPC", as Envoy's `ads_config.api_type` names the protocol.
    api = ""

    def __init__(self, conn_id: str, proxy: Proxy, *, observer: Observer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.id = conn_id
        self.proxy = proxy
        self.connected_at = clock()
        self.watches: dict[str, Watch] = {t: Watch(t) for t in PUSH_ORDER}
        self.snapshot_version = ""
        self._observer = observer or Observer()
        self._clock = clock
        self._nonce = 0
        self._log = log.bind(proxy=proxy.id, conn=conn_id)
        # Sync status, for /debug/syncz and convergence (see `note_sync`).
        self.client_version = ""
        self.synced_version = ""
        self.synced_at = 0.0

    def _next_nonce(self) -> str:
        self._nonce += 1
        return f"{self.id}-{self._nonce}"

    # -- what both protocols record, in one place -----------------------------------

    def _record_send(self, watch: Watch, version: str, trigger: str, *, nonce: str | None = None,
                     **detail: object) -> str:
        """A response of `watch`'s type at `version` goes out: it awaits its ACK under a new
        nonce (this stream's own, unless the caller brings one shared with other streams,
        never the one this type's last response had), and a request with any older nonce
        is stale from now on."""
        nonce = nonce or self._next_nonce()
        watch.nonce = nonce
        watch.version_sent = version
        watch.awaiting_ack = True
        watch.sent_at = self._clock()
        watch.sends += 1
        self._observer.sent(self.proxy, watch.type_url, version, trigger)
        self._log.debug("sent", type=short_type(watch.type_url), version=version, nonce=nonce, trigger=trigger,
                        **detail)
        return nonce

    def _record_ack(self, watch: Watch, version: str) -> bool:
        """The latest response of `watch`'s type is ACKed at `version`; False if none was
        awaiting an answer (nothing to record)."""
        if not watch.awaiting_ack:
            return False
        watch.awaiting_ack = False
        watch.version_acked = version
        watch.acked_at = self._clock()
        # Every response sent since the last ACK is settled: Envoy holds the latest.
        watch.refs_in_flight = []
        self._observer.acked(self.proxy, watch.type_url, version, watch.acked_at - watch.sent_at)
        return True

    def _record_nack(self, watch: Watch, nonce: str, message: str, **detail: object) -> None:
        """The latest response of `watch`'s type is rejected.  The rejected version is never
        resent (each protocol's send refuses it); the next config change sends a new one.
        `refs_in_flight` stays: what Envoy kept is settled by the next ACK."""
        watch.awaiting_ack = False
        watch.last_nack = Nack(watch.version_sent, nonce, message, self._clock())
        self._log.warning("NACK", type=short_type(watch.type_url), version=watch.version_sent, nonce=nonce,
                          error=message, **detail)
        self._observer.nacked(self.proxy, watch.type_url, watch.version_sent, message)

    # -- make before break ----------------------------------------------------------

    def _clusters_named(self) -> set[str]:
        """Clusters that listeners and routes the proxy may be using name: the ACKed ones,
        and those of every response sent since (Envoy applies responses in order, so any
        of them may be live).  No cluster among them may be removed yet."""
        used: set[str] = set()
        for type_url in ROUTING_TYPES:
            watch = self.watches[type_url]
            for refs in watch.refs_in_flight:
                used.update(refs)
            for refs in watch.refs_acked.values():
                used.update(refs)
        return used

    def _may_release_clusters(self) -> bool:
        """Whether clusters only old listeners and routes used may go now: CDS is subscribed
        and no listener or route response awaits its ACK."""
        return self.watches[CLUSTER_TYPE].subscribed and \
            not any(self.watches[t].awaiting_ack for t in ROUTING_TYPES)

    @abstractmethod
    def handle_request(self, request: RequestT, snapshot: Snapshot | None) -> list[bytes]:
        """Answer one request from the proxy (None: no consistent snapshot to serve)."""

    def receive(self, request: Any, snapshot: Snapshot | None) -> list[bytes]:
        """A request as the server's deserializer read it off the wire."""
        return self.handle_request(request, snapshot)

    @abstractmethod
    def push(self, snapshot: Snapshot, trigger: str = "config") -> list[bytes]:
        """Send what changed in `snapshot`, in push order."""

    # -- sync status ----------------------------------------------------------------

    def in_sync(self) -> bool:
        """CDS and LDS are subscribed, and every type's latest response is ACKed (none
        awaiting an answer, none NACKed)."""
        if not all(self.watches[t].subscribed for t in WILDCARD_TYPES):
            return False
        return all(not w.awaiting_ack and w.version_acked == w.version_sent
                   for w in self.watches.values() if w.subscribed and w.version_sent)

    def note_sync(self) -> bool:
        """Called after each request or push: records (once per snapshot version) the moment
        the stream has ACKed everything that version sent, and tells the observer."""
        version = self.snapshot_version
        if not version or version == self.synced_version or not self.in_sync():
            return False
        self.synced_version = version
        self.synced_at = self._clock()
        self._observer.synced(self.proxy, version, self.connected_at, self.synced_at)
        return True


# A stream of either protocol, as the server and the debug endpoints hold it.
AnyConnection = BaseConnection[Any]
