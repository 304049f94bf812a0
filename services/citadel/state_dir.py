"""Citadel's state directory: private files written atomically, under an inter-process lock.

Two citadels may share a state dir on one host (a restart overlapping the old process);
the lock makes "load, or create if missing" happen once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from services.citadel.errors import CaLoadError

LOCK_FILE = ".lock"


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CaLoadError(f"cannot create state dir {self.path}: {exc.strerror}") from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.ensure()
        with (self.path / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def file(self, name: str) -> Path:
        return self.path / name

    def read(self, name: str) -> bytes | None:
        try:
            return self.file(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CaLoadError(f"cannot read {self.file(name)}: {exc.strerror}") from exc

    def write(self, name: str, data: bytes, *, private: bool) -> None:
        """Write through a temp file and rename, so readers never see half a file; keys get 0600."""
        target = self.file(name)
        temp = target.with_name(f".{name}.tmp")
        mode = 0o600 if private else 0o644
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode)
            os.replace(temp, target)
        except OSError as exc:
            raise CaLoadError(f"cannot write {target}: {exc.strerror}") from exc
