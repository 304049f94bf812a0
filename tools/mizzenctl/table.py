"""Tables the way istioctl prints them (Go's tabwriter with padding 5): every column but
the last is padded to its widest cell plus the padding; trailing blanks are dropped."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render"]


def render(header: Sequence[str], rows: Sequence[Sequence[object]], *, padding: int = 5) -> str:
    lines = [[str(cell) for cell in header], *[[str(cell) for cell in row] for row in rows]]
    columns = max(len(line) for line in lines)
    widths = [max((len(line[c]) for line in lines if c < len(line)), default=0) for c in range(columns)]
    out = []
    for line in lines:
        cells = [cell.ljust(widths[c] + padding) if c < len(line) - 1 else cell for c, cell in enumerate(line)]
        out.append("".join(cells).rstrip())
    return "\n".join(out) + "\n"
