"""What every ADS stream keeps, whichever protocol it speaks (state of the world or delta).

Per xDS type a `Watch`: what was sent and ACKed, the last NACK, when.  Per stream its sync
status.  The debug endpoints, `mizzenctl proxy-status` and the metrics read only these, so
SotW and delta streams look the same to them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from libs.envoy import CLUSTER_TYPE, LISTENER_TYPE, PUSH_ORDER
from services.pilot.model.proxy import Proxy
from services.pilot.xds.snapshot import EncodedResource, Snapshot

__all__ = ["WILDCARD_TYPES", "AnyConnection", "BaseConnection", "Nack", "Observer", "Watch"]

log = structlog.get_logger(__name__)

WILDCARD_TYPES = (CLUSTER_TYPE, LISTENER_TYPE)

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
    # Clusters named by every response sent since the last ACK: Envoy may be using any of
    # them (it applies responses in order), so none may go yet.
    refs_in_flight: set[str] = field(default_factory=set)
    awaiting_ack: bool = False
    last_nack: Nack | None = None
    sent_at: float = 0.0
    acked_at: float = 0.0
    sends: int = 0


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
