"""Reading state-of-the-world requests off the wire without decoding what they repeat.

Every ACK of EDS or RDS names again each resource the proxy subscribes to: at 1,000
services an EDS ACK carries 1,000 cluster names (~50 KB), and a push is answered by a
thousand of them.  Decoding those names into Python strings and a set costs ~70 µs a
request, almost always to learn what the stream's last request of that type said.  So
the names are split off as raw bytes, and the stream compares them, byte for byte, with
the last ones it decoded (see `Connection.receive`).

Protobuf encoders (Envoy's, gRPC's, Python's) write fields in field-number order:
`version_info` (1), `node` (2), `resource_names` (3) as one run, `type_url` (4),
`response_nonce` (5), `error_detail` (6).  A request laid out otherwise, or one that
carries a node, is decoded whole.  The split is checked both ways: the rest must decode
with no names left in it, and a run is remembered only once it has decoded on its own to
exactly the names of the whole request (a run cut inside a name would not).
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import DecodeError

from libs.envoy import TYPE_URL_PREFIX
from libs.protowire import read_varint

__all__ = ["ReadRequest", "read_request"]

_VERSION_TAG = 0x0A  # field 1, length-delimited
_NAMES_TAG = 0x1A  # field 3
_TYPE_URL_TAG = 0x22  # field 4
_TYPE_URL_PREFIX = TYPE_URL_PREFIX.encode()


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A request as read off the wire.  With `names` (the raw `resource_names` fields, cut
    from `raw`), `message` is the rest of the request, without them."""

    message: discovery_pb2.DiscoveryRequest
    raw: bytes = b""
    # Where in `raw` the names lie.  Not cut out until needed: most requests are ACKs that
    # repeat the stream's last names, which `names_are` checks in place, and a thousand
    # streams each holding a 50 KB copy while their ACKs queue cost ~50 MB.
    span: tuple[int, int] | None = None

    @property
    def node(self) -> base_pb2.Node:
        return self.message.node

    @property
    def names(self) -> bytes | None:
        """The raw `resource_names` fields (a copy; bytes compare with memcmp, a memoryview
        byte by byte), or None if they were not split off."""
        return None if self.span is None else self.raw[self.span[0]:self.span[1]]

    def names_are(self, names: bytes) -> bool:
        """Whether the raw names are exactly `names` (memcmp in place, no copy)."""
        if self.span is None:
            return False
        start, end = self.span
        return end - start == len(names) and self.raw.startswith(names, start)

    def whole(self) -> discovery_pb2.DiscoveryRequest:
        """The request with its names decoded."""
        return self.message if self.span is None else discovery_pb2.DiscoveryRequest.FromString(self.raw)

    def names_stand_alone(self, whole: discovery_pb2.DiscoveryRequest) -> bool:
        """Whether `names` decode on their own to exactly `whole`'s names (and nothing
        else): only then does an equal run of bytes later mean equal names."""
        names = self.names
        if names is None:
            return False
        try:
            alone = discovery_pb2.DiscoveryRequest.FromString(names)
        except DecodeError:
            return False
        return len(alone.ListFields()) == 1 and alone.resource_names == whole.resource_names


def read_request(raw: bytes) -> ReadRequest:
    """The gRPC request deserializer for state-of-the-world streams."""
    run = _names_run(raw)
    if run is not None:
        start, end = run
        try:
            rest = discovery_pb2.DiscoveryRequest.FromString(raw[:start] + raw[end:])
        except DecodeError:
            rest = None
        if rest is not None and not rest.resource_names and not rest.HasField("node"):
            return ReadRequest(rest, raw, run)
    return ReadRequest(discovery_pb2.DiscoveryRequest.FromString(raw), raw)


def _names_run(raw: bytes) -> tuple[int, int] | None:
    """Where the `resource_names` fields lie: after `version_info`, up to the `type_url`
    field.  None when the request does not start that way."""
    at = 0
    if raw[:1] == bytes([_VERSION_TAG]):
        try:
            length, at = read_varint(raw, 1)
        except IndexError:
            return None
        at += length
    if raw[at:at + 1] != bytes([_NAMES_TAG]):
        return None
    # From the end: the type URL comes after every name (rfind takes 0.1 µs where find,
    # scanning 50 KB of names, takes 26).  A NACK whose message quotes a type URL is cut
    # in the wrong place, and then decoded whole (see `read_request`, `names_stand_alone`).
    type_url = raw.rfind(_TYPE_URL_PREFIX, at)
    # The type URL is shorter than 128 bytes: a one-byte length after the field's tag.
    if type_url < at + 2 or raw[type_url - 2] != _TYPE_URL_TAG or raw[type_url - 1] >= 0x80:
        return None
    return at, type_url - 2
