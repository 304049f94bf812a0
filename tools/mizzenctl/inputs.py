"""Reading `-f FILE|DIR|-` the way kubectl does: files, directories (recursive), stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

SUFFIXES = (".yaml", ".yml", ".json")


class InputError(Exception):
    pass


def iter_inputs(targets: list[str]) -> Iterator[tuple[str, bytes]]:
    """(source name, bytes) for every file named, every config file under a directory,
    and standard input for `-`."""
    for target in targets:
        if target == "-":
            yield "<stdin>", sys.stdin.buffer.read()
            continue
        path = Path(target)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not files:
                raise InputError(f"{target}: no .yaml, .yml or .json files in this directory")
            for file in files:
                yield str(file), file.read_bytes()
        elif path.is_file():
            yield str(path), path.read_bytes()
        else:
            raise InputError(f"{target}: no such file or directory")
