from __future__ import annotations

import pytest
from google.protobuf import wrappers_pb2

from libs.protowire import encode_varint, read_varint


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32 - 1, 2**63 - 1])
def test_varints_read_back_as_protobuf_writes_them(value: int) -> None:
    # UInt64Value{value} is the field's tag (0x08) followed by the varint.
    encoded = wrappers_pb2.UInt64Value(value=value).SerializeToString()[1:] if value else b"\x00"
    assert encode_varint(value) == encoded
    assert read_varint(b"x" + encoded + b"rest", 1) == (value, 1 + len(encoded))


def test_a_varint_cut_short_is_an_error() -> None:
    with pytest.raises(IndexError):
        read_varint(encode_varint(300)[:1], 0)
