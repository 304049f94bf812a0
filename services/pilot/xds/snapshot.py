"""Encoded resources: each packed and serialised once, then shared by every stream.

A SotW response is the concatenation of a header (version, type), the pre-encoded
`resources` entries it carries, and a per-send nonce: protobuf merges concatenated
messages, appending repeated fields, so no response is ever re-serialised per stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from libs.envoy import pack
from services.pilot.networking.generator import ProxyConfig
from services.pilot.networking.memo import TranslationMemo


@dataclass(frozen=True, slots=True)
class EncodedResource:
    name: str
    # `DiscoveryResponse.resources` entry: field tag, length, packed Any.
    field_bytes: bytes
    digest: bytes


def encode(name: str, resource: Message) -> EncodedResource:
    field_bytes = discovery_pb2.DiscoveryResponse(resources=[pack(resource)]).SerializeToString(deterministic=True)
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

    @classmethod
    def from_config(cls, config: ProxyConfig, memo: TranslationMemo | None = None) -> Snapshot:
        """Encode `config`: each shared part once per push, each message once while it lives."""
        memo = memo or TranslationMemo()

        def encode_part(part: dict[str, Message]) -> dict[str, EncodedResource]:
            return {name: memo.of(resource, "encoded", partial(encode, name, resource), lasting=True)
                    for name, resource in part.items()}

        resources: dict[str, dict[str, EncodedResource]] = {}
        for type_url, parts in config.parts.items():
            encoded = [memo.of(part, "encoded-part", partial(encode_part, part)) for part in parts]
            if len(encoded) == 1:
                resources[type_url] = encoded[0]
            else:
                merged: dict[str, EncodedResource] = {}
                for part_encoded in encoded:
                    merged.update(part_encoded)
                resources[type_url] = merged
        return cls(
            version=config.version,
            resources=resources,
            references=config.references,
            warnings=config.warnings,
            eds_clusters=config.eds_clusters,
            route_names=config.route_names,
        )

    def select(self, type_url: str, names: frozenset[str] | None) -> list[EncodedResource]:
        available = self.resources.get(type_url, {})
        if names is None:
            return [available[name] for name in sorted(available)]
        return [available[name] for name in sorted(names) if name in available]


def response_bytes(version: str, type_url: str, resources: Iterable[EncodedResource], nonce: str) -> bytes:
    head = discovery_pb2.DiscoveryResponse(version_info=version, type_url=type_url).SerializeToString()
    tail = discovery_pb2.DiscoveryResponse(nonce=nonce).SerializeToString()
    return b"".join([head, *(r.field_bytes for r in resources), tail])


def content_digest(resources: Iterable[EncodedResource]) -> tuple[tuple[str, bytes], ...]:
    return tuple((r.name, r.digest) for r in resources)
