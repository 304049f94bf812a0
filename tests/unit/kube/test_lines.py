"""Watch chunks are not event boundaries: lines are reassembled across chunks."""

from __future__ import annotations

from libs.kube._stream import LineBuffer


def test_lines_split_across_chunks_and_several_per_chunk() -> None:
    buffer = LineBuffer()
    out: list[bytes] = []
    for chunk in (b'{"a":', b'1}\n{"b":2}\n{"c"', b":3}\n", b"\n", b'{"d":4}'):
        out.extend(buffer.feed(chunk))
    assert out == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert buffer.pending == b'{"d":4}'
