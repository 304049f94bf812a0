"""Encoded resources: each packed and serialised once, then shared by every stream.

A SotW response is the concatenation of a header (version, type), the pre-encoded
`resources` entries it carries, and a per-send nonce: protobuf merges concatenated
messages, appending repeated fields, so no response is ever re-serialised per stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from libs.envoy import pack
from services.pilot.networking.generator import ProxyConfig


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
    def from_config(cls, config: ProxyConfig) -> Snapshot:
        return cls(
            version=config.version,
            resources={
                type_url: {name: encode(name, resource) for name, resource in sorted(by_name.items())}
                for type_url, by_name in config.resources.items()
            },
            references=config.references,
            warnings=config.warnings,
            eds_clusters=config.eds_clusters,
            route_names=config.route_names,
        )

    def select(self, type_url: str, names: frozenset[str] | None) -> list[EncodedResource]:
        available = self.resources.get(type_url, {})
        if names is None:
            return list(available.values())
        return [available[name] for name in sorted(names) if name in available]


def response_bytes(version: str, type_url: str, resources: Iterable[EncodedResource], nonce: str) -> bytes:
    head = discovery_pb2.DiscoveryResponse(version_info=version, type_url=type_url).SerializeToString()
    tail = discovery_pb2.DiscoveryResponse(nonce=nonce).SerializeToString()
    return b"".join([head, *(r.field_bytes for r in resources), tail])


def content_digest(resources: Iterable[EncodedResource]) -> tuple[tuple[str, bytes], ...]:
    return tuple((r.name, r.digest) for r in resources)
