"""One SDS stream (state of the world): what was asked, sent, ACKed and NACKed.

Pure bookkeeping, no I/O, the same rules as pilot's ADS (see docs/xds-notes.md): a request with
`error_detail` is a NACK, recorded and never answered with the same content; a request
whose nonce is not the latest is stale and ignored; a request without a nonce is always
answered; new content is pushed once, when it differs from what was sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from envoy.service.discovery.v3 import discovery_pb2

from libs.envoy import SECRET_TYPE
from services.agent.sds_secrets import SecretResource

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Nack:
    versions: tuple[tuple[str, str], ...]
    message: str


class SdsStream:
    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.node = ""
        self.names: frozenset[str] = frozenset()
        self.nonce = ""
        self.sent: tuple[tuple[str, str], ...] = ()
        self.acked: tuple[tuple[str, str], ...] = ()
        # The resources of the latest response, and of the latest one Envoy ACKed.
        self.sent_resources: dict[str, SecretResource] = {}
        self.acked_resources: dict[str, SecretResource] = {}
        self.awaiting_ack = False
        self.last_nack: Nack | None = None
        self.acks = 0
        self._count = 0

    def on_request(self, request: discovery_pb2.DiscoveryRequest,
                   resources: Mapping[str, SecretResource]) -> discovery_pb2.DiscoveryResponse | None:
        if request.node.id:
            self.node = request.node.id
        if request.type_url and request.type_url != SECRET_TYPE:
            log.warning("SDS request for another type ignored", type_url=request.type_url, stream=self.id)
            return None
        names = frozenset(request.resource_names)
        if request.response_nonce and request.response_nonce != self.nonce:
            return None  # stale: an answer to an older response
        if request.response_nonce and request.HasField("error_detail"):
            self.awaiting_ack = False
            self.last_nack = Nack(self.sent, request.error_detail.message)
            log.warning("SDS NACK", stream=self.id, node=self.node, nonce=request.response_nonce,
                        secrets=dict(self.sent), error=request.error_detail.message)
            self.names = names
            return None
        if request.response_nonce:
            if self.awaiting_ack:
                self.awaiting_ack = False
                self.acked = self.sent
                self.acked_resources = self.sent_resources
                self.acks += 1
            if names == self.names:
                return None
            self.names = names
            return self._respond(resources, force=True)
        # No nonce: a new subscription, or Envoy reconnecting.
        self.names = names
        unknown = sorted(n for n in names if n not in resources)
        if unknown:
            log.info("SDS secrets not available (yet)", stream=self.id, names=unknown)
        return self._respond(resources, force=True)

    def on_change(self, resources: Mapping[str, SecretResource]) -> discovery_pb2.DiscoveryResponse | None:
        return self._respond(resources, force=False)

    def _respond(self, resources: Mapping[str, SecretResource],
                 *, force: bool) -> discovery_pb2.DiscoveryResponse | None:
        selected = [resources[n] for n in sorted(self.names) if n in resources]
        if not selected:
            return None
        versions = tuple((r.name, r.version) for r in selected)
        if not force and versions == self.sent:
            return None
        if self.last_nack is not None and self.last_nack.versions == versions:
            return None  # Envoy rejected exactly this; wait for new content.
        self._count += 1
        self.nonce = f"{self.id}-{self._count}"
        self.sent = versions
        self.sent_resources = {r.name: r for r in selected}
        self.awaiting_ack = True
        version = hashlib.sha256(repr(versions).encode()).hexdigest()[:16]
        log.debug("SDS push", stream=self.id, node=self.node, version=version, nonce=self.nonce,
                  secrets=dict(versions))
        return discovery_pb2.DiscoveryResponse(version_info=version, type_url=SECRET_TYPE, nonce=self.nonce,
                                               resources=[r.packed for r in selected])
