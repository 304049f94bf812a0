"""Encoded resources: each packed and serialised once, then shared by every stream.

A SotW response is the concatenation of a header (version, type), the pre-encoded
`resources` entries it carries, and a per-send nonce: protobuf merges concatenated
messages, appending repeated fields, so no response is ever re-serialised per stream.
A delta response is built the same way from `DeltaDiscoveryResponse.resources` entries,
each a `Resource` (name, version, Any) whose Any is the SotW entry's bytes as they are.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any, TypeVar, cast

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, pack, type_url_of
from libs.protowire import encode_varint
from services.pilot.model.push_context import PushContext
from services.pilot.model.services import Endpoint
from services.pilot.networking.generator import EndpointReads, ProxyConfig
from services.pilot.networking.memo import TranslationMemo

# Tag bytes of length-delimited fields: `DeltaDiscoveryResponse.resources` (2) and
# `Resource.resource` (2) share the tag of `DiscoveryResponse.resources` (2).
_RESOURCES_TAG = b"\x12"
# `Any.type_url` (1) and `Any.value` (2).
_ANY_TYPE_URL_TAG, _ANY_VALUE_TAG = b"\x0a", b"\x12"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EncodedResource:
    name: str
    # `DiscoveryResponse.resources` entry: field tag, length, packed Any.
    field_bytes: bytes
    digest: bytes
    # The head of this resource's `DeltaDiscoveryResponse.resources` entry, made on first
    # use: SotW-only pilots never pay for it, delta streams share it (see `delta_entry`).
    _delta_head: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def version(self) -> str:
        """The resource's version in delta xDS: its content digest, so equal content is
        recognised across streams, reconnects and pilot restarts."""
        return self.digest.hex()

    def delta_entry(self) -> list[bytes]:
        """The `DeltaDiscoveryResponse.resources` entry for this resource, in two pieces
        (head, then the packed Any already in `field_bytes`) so the Any is never copied
        into a second long-lived buffer."""
        head = self._delta_head
        if head is None:
            # Resource{version (1), name (3)} then `field_bytes`, which is field 2 (the Any)
            # of Resource as much as of DiscoveryResponse; the entry wraps all three.
            named = discovery_pb2.Resource(version=self.version, name=self.name).SerializeToString(deterministic=True)
            head = _RESOURCES_TAG + encode_varint(len(named) + len(self.field_bytes)) + named
            # Frozen for everyone else; this one lazily filled cache slot is the exception.
            object.__setattr__(self, "_delta_head", head)
        return [head, self.field_bytes]


def encode(name: str, resource: Message, value: bytes | None = None) -> EncodedResource:
    """`resource` as a `DiscoveryResponse.resources` entry.  `value`: its serialisation, if
    already made, wrapped as `Any.Pack` and the response's encoder would lay it out."""
    if value is None:
        field_bytes = discovery_pb2.DiscoveryResponse(resources=[pack(resource)]).SerializeToString(deterministic=True)
    else:
        url = type_url_of(resource).encode()
        head = b"".join((_ANY_TYPE_URL_TAG, encode_varint(len(url)), url,
                         _ANY_VALUE_TAG, encode_varint(len(value))))
        field_bytes = b"".join((_RESOURCES_TAG, encode_varint(len(head) + len(value)), head, value))
    return EncodedResource(name, field_bytes, hashlib.blake2b(field_bytes, digest_size=16).digest())


@dataclass(frozen=True)
class Snapshot:
    """A proxy class's config at one version, ready to send."""

    version: str
    resources: dict[str, dict[str, EncodedResource]]
    references: dict[str, frozenset[str]]
    warnings: tuple[str, ...]
    # What Envoy will subscribe to once it has applied this snapshot's CDS and LDS.
    eds_clusters: frozenset[str] = frozenset()
    route_names: frozenset[str] = frozenset()
    # The shared outbound clusters and load assignments it was built from (the first part
    # of each type), so an endpoint-only push can rebuild just what changed and tell whether
    # its clusters are still what they were (see `SnapshotCache`).
    cluster_part: dict[str, Message] | None = field(default=None, compare=False, repr=False)
    endpoint_part: dict[str, Message] | None = field(default=None, compare=False, repr=False)
    # The push's endpoints those parts were built from: what the snapshot reflects, which
    # may be a push older than the last one when its proxy was not asked for since.
    endpoints_source: Mapping[tuple[str, int], tuple[Endpoint, ...]] | None = field(
        default=None, compare=False, repr=False)
    # What its own side read of endpoints (`ProxyConfig.reads`).
    reads: EndpointReads = field(default=EndpointReads(), compare=False, repr=False)
    # One dict per push, shared by all its snapshots: what streams work out once for
    # everyone (e.g. how one shared part differs from the last).
    shared: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    def known_names(self, names: frozenset[str]) -> frozenset[str]:
        """`names`, or this snapshot's own equal set of EDS or RDS names: a thousand proxies
        subscribing to exactly what the snapshot names then hold one set (and one copy of
        each name), not a thousand copies of what they sent."""
        for known in (self.eds_clusters, self.route_names):
            if names is known or (len(names) == len(known) and names == known):
                return known
        return names

    @classmethod
    def from_config(cls, config: ProxyConfig, memo: TranslationMemo | None = None, *,
                    shared: dict[Hashable, Any] | None = None, push: PushContext | None = None) -> Snapshot:
        """Encode `config`: each shared part once per push, each message once while it lives.
        `push`: what it was translated from."""
        memo = memo or TranslationMemo()
        resources: dict[str, dict[str, EncodedResource]] = {}
        for type_url, parts in config.parts.items():
            resources[type_url] = _stable(type_url, [encode_part(part, memo) for part in parts], memo)
        return cls(
            version=config.version,
            resources=resources,
            references=config.references,
            warnings=config.warnings,
            eds_clusters=config.eds_clusters,
            route_names=config.route_names,
            cluster_part=config.parts[CLUSTER_TYPE][0] if config.parts.get(CLUSTER_TYPE) else None,
            endpoint_part=config.parts[ENDPOINT_TYPE][0] if config.parts.get(ENDPOINT_TYPE) else None,
            shared={} if shared is None else shared,
            endpoints_source=push.endpoints if push is not None else None,
            reads=config.reads,
        )

    def with_endpoints(self, push: PushContext, clusters: dict[str, Message], endpoints: dict[str, Message],
                       memo: TranslationMemo, shared: dict[Hashable, Any]) -> Snapshot | None:
        """This snapshot for `push` with new load assignments (from the cluster part
        `clusters`, which encodes as its own did) and everything else as it is (the same
        dicts, which streams recognise as already sent); None if the assignments are not
        for the same clusters."""
        # Once per push for the thousand proxies that share the part (it lives as long as the push).
        encoded = memo.per_push(("encoded-endpoints", id(endpoints)),
                                lambda: _stable(ENDPOINT_TYPE, [encode_part(endpoints, memo)], memo))
        if not same_names(shared, encoded, self.resources.get(ENDPOINT_TYPE, {})):
            return None
        # Built directly: dataclasses.replace reads every field's definition, a thousand
        # times per endpoint change.
        return Snapshot(push.version, {**self.resources, ENDPOINT_TYPE: encoded}, self.references, self.warnings,
                        eds_clusters=self.eds_clusters, route_names=self.route_names, cluster_part=clusters,
                        endpoint_part=endpoints, endpoints_source=push.endpoints, reads=self.reads, shared=shared)

    def select(self, type_url: str, names: frozenset[str] | None) -> Selection:
        """The resources of `type_url` that `names` selects (None: all), by name, and their
        digest: sorted and hashed once per push for every stream that asks alike (in a
        sync, a thousand streams ask for the same thousand clusters and load assignments)."""
        available = self.resources.get(type_url, _NO_RESOURCES)

        def build() -> Selection:
            present = sorted(available if names is None else names & available.keys())
            # itemgetter walks the names in C: a thousand resources for each proxy's CDS.
            chosen = itemgetter(*present)(available) if len(present) > 1 else tuple(available[n] for n in present)
            return Selection(chosen, content_digest(chosen))

        return per_pair(self.shared, "selection", available, names, build)


@dataclass(frozen=True, slots=True)
class Selection:
    """Resources of one type as a response carries them, in name order, and their
    `content_digest`."""

    resources: tuple[EncodedResource, ...]
    digest: bytes

    @classmethod
    def of(cls, resources: Sequence[EncodedResource]) -> Selection:
        return cls(tuple(resources), content_digest(resources))


_NO_RESOURCES: dict[str, EncodedResource] = {}
_FIELD_BYTES = attrgetter("field_bytes")
_DIGEST = attrgetter("digest")


def encoded(name: str, resource: Message, memo: TranslationMemo) -> EncodedResource:
    """`resource` encoded once while the message lives (lasting memo, keyed by identity)."""
    return memo.of(resource, "encoded", lambda: encode(name, resource, memo.take_serialized(resource)), lasting=True)


def encode_part(part: dict[str, Message], memo: TranslationMemo) -> dict[str, EncodedResource]:
    """A part encoded once while it lives (parts are never changed), however many proxies
    share it and however many pushes keep it."""
    return memo.of(part, "encoded-part", lambda: {name: encoded(name, r, memo) for name, r in part.items()},
                   lasting=True)


def _stable(type_url: str, parts: list[dict[str, EncodedResource]],
            memo: TranslationMemo) -> dict[str, EncodedResource]:
    """The parts merged, as the very dict an earlier push made of the same content, if one
    did: a stream recognises a type it already sent by identity, with no look at its
    thousand resources.  Each part's content is named once while the part lives (shared
    parts once for everyone)."""
    tokens = tuple(memo.of(part, "content-token", partial(_content_token, part, memo), lasting=True) for part in parts)

    def merge() -> dict[str, EncodedResource]:
        if len(parts) == 1:
            return parts[0]
        merged: dict[str, EncodedResource] = {}
        for part in parts:
            merged.update(part)
        return merged

    return memo.lasting(("resources", type_url, tokens), merge)


def _content_token(part: dict[str, EncodedResource], memo: TranslationMemo) -> object:
    return memo.lasting(("content", tuple((name, r.digest) for name, r in part.items())), object)


def per_pair(shared: dict[Hashable, Any], tag: str, first: object, second: object, answer: Callable[[], T]) -> T:
    """`answer()` about two shared objects, worked out once per push whichever stream asks
    (both are kept with the answer, so a reused id cannot return another pair's)."""
    key = (tag, id(first), id(second))
    found = shared.get(key)
    if found is not None and found[0] is first and found[1] is second:
        return cast(T, found[2])
    value = answer()
    shared[key] = (first, second, value)
    return value


def same_names(shared: dict[Hashable, Any], new: dict[str, EncodedResource], old: dict[str, EncodedResource]) -> bool:
    """Whether two resource dicts name the same resources (once per pair, not per proxy)."""
    return per_pair(shared, "same-names", new, old, lambda: new.keys() == old.keys())


def names_within(shared: dict[Hashable, Any], resources: dict[str, EncodedResource], names: frozenset[str]) -> bool:
    """Whether every resource's name is among `names`."""
    return per_pair(shared, "names-within", resources, names, lambda: resources.keys() <= names)


def part_changes(shared: dict[Hashable, Any], old: dict[str, EncodedResource],
                 new: dict[str, EncodedResource]) -> tuple[list[str], list[str]]:
    """Names whose resource differs from `old` to `new`, and names gone: worked out once
    per push for every stream that held `old`."""

    def changes() -> tuple[list[str], list[str]]:
        changed = [name for name, resource in new.items() if (before := old.get(name)) is not resource
                   and (before is None or before.digest != resource.digest)]
        return changed, [name for name in old if name not in new]

    return per_pair(shared, "part-changes", old, new, changes)


def response_bytes(version: str, type_url: str, resources: Iterable[EncodedResource], nonce: str) -> bytes:
    head = discovery_pb2.DiscoveryResponse(version_info=version, type_url=type_url).SerializeToString()
    tail = discovery_pb2.DiscoveryResponse(nonce=nonce).SerializeToString()
    return b"".join([head, *map(_FIELD_BYTES, resources), tail])


@dataclass(frozen=True, slots=True)
class SharedResponse:
    """A SotW response body and the nonce inside it."""

    nonce: str
    body: bytes


# Shared responses' nonces: each distinct response in this process gets its own.
_response_ids = itertools.count(1)
_SENT_ONCE = object()


def shared_response(shared: dict[Hashable, Any], version: str, type_url: str,
                    resources: Sequence[EncodedResource], removed: Iterable[str] | None = None, *,
                    digest: bytes | None = None) -> SharedResponse | None:
    """One response for every stream that sends these resources at this version in this
    push (`shared` is the push's dict), under one nonce: a VirtualService change sends a
    thousand sidecars the same half-megabyte route configuration, joined once instead of
    a thousand times.  A nonce only has to differ from the one its stream sent before (the
    caller checks that), so streams may share one.  With `removed` (a list, even empty)
    it is a delta response removing those names; without, a SotW one.

    None the first time: the response is kept only once a second stream sends it too, or
    every proxy's own responses (its inbound listeners, say) would be held until the next
    push."""
    gone = None if removed is None else tuple(sorted(removed))
    key = ("response", type_url, version, content_digest(resources) if digest is None else digest, gone)
    found = shared.get(key)
    if found is None:
        shared[key] = _SENT_ONCE
        return None
    if found is _SENT_ONCE:
        nonce = f"{version}-r{next(_response_ids)}"
        body = response_bytes(version, type_url, resources, nonce) if gone is None \
            else delta_response_bytes(version, type_url, resources, gone, nonce)
        found = shared[key] = SharedResponse(nonce, body)
    return cast(SharedResponse, found)


def drop_responses(shared: dict[Hashable, Any]) -> None:
    """A replaced push's shared responses, let go: no stream sends them again (the new push
    builds its own), while snapshots carried over from it still hold its dict."""
    for key in [k for k in shared if isinstance(k, tuple) and k[0] == "response"]:
        del shared[key]


def content_digest(resources: Iterable[EncodedResource]) -> bytes:
    """One digest of a response's resources (each digest covers its name): 16 bytes a
    stream keeps, not a thousand pairs."""
    return hashlib.blake2b(b"".join(map(_DIGEST, resources)), digest_size=16).digest()


def delta_response_bytes(system_version: str, type_url: str, resources: Iterable[EncodedResource],
                         removed: Iterable[str], nonce: str) -> bytes:
    """A `DeltaDiscoveryResponse`: shared resource entries between a per-send head and tail."""
    head = discovery_pb2.DeltaDiscoveryResponse(system_version_info=system_version, type_url=type_url,
                                                removed_resources=sorted(removed)).SerializeToString()
    tail = discovery_pb2.DeltaDiscoveryResponse(nonce=nonce).SerializeToString()
    pieces = [head]
    for resource in resources:
        pieces.extend(resource.delta_entry())
    pieces.append(tail)
    return b"".join(pieces)
