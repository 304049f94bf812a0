"""Protobuf's varints, for the few places that read or write the wire format by hand.

Pilot splices pre-encoded resources into responses and reads ACKs without decoding the
names they repeat (`services/pilot/xds`), the pilot benchmark's load tool reads responses'
envelopes without decoding their resources, and the fake Kubernetes API server encodes its
OpenAPI document.  Everything else goes through the generated messages.
"""

from __future__ import annotations

__all__ = ["encode_varint", "read_varint"]


def encode_varint(value: int) -> bytes:
    """`value` (not negative) as a varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint starting at `at`, and where it ends; IndexError if `data` ends inside it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
