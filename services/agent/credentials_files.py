"""Credentials from a directory, the local mesh's stand-in for Kubernetes Secrets:
`<dir>/<namespace>/<name>/` holds one file per secret key (`tls.crt`, `tls.key`, `ca.crt`,
or `cert`, `key`, `cacert`), the layout a Secret mounted as a volume has.

Changes are found by polling: every `poll_interval_s` each file's signature (size, mtime,
ctime, inode; `stat` follows symlinks, so kubelet's `..data` swaps count) is compared with the
last poll's.  Only the key files are ever opened.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from services.agent.credentials import (
    ALL_KEYS,
    SecretData,
    SecretStore,
)
from services.agent.errors import CredentialNotFound, InvalidCredential

log = structlog.get_logger(__name__)

Signature = tuple[int, int, int, int] | str | None


def file_signature(path: Path) -> Signature:
    """What changes when a file is rewritten or replaced; None when absent, the error's name
    when it cannot be looked at (a distinct state, so recovering from it counts as a change)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return type(exc).__name__
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


class FileCredentialStore(SecretStore):
    def __init__(self, directory: Path, *, poll_interval_s: float = 0.5) -> None:
        super().__init__()
        self.directory = directory
        self.poll_interval_s = poll_interval_s
        self._signatures: dict[tuple[str, str], tuple[Signature, ...]] = {}

    @property
    def source(self) -> str:
        return f"credentials directory {self.directory}"

    def data(self, namespace: str, name: str) -> SecretData | None:
        """The secret's keys as files hold them; None when its directory does not exist."""
        what = f"secret {namespace}/{name}"
        if not _plain(namespace) or not _plain(name):
            raise CredentialNotFound(what, "not a plain namespace and name; refusing to look outside "
                                           f"{self.directory}")
        folder = self.directory / namespace / name
        if not folder.is_dir():
            return None
        found: dict[str, bytes] = {}
        for key in ALL_KEYS:
            try:
                found[key] = (folder / key).read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CredentialNotFound(what, f"cannot read {folder / key}: {exc.strerror or exc}") from None
        if not found:
            try:
                present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
            except OSError as exc:
                raise CredentialNotFound(what, f"cannot list {folder}: {exc.strerror or exc}") from None
            raise InvalidCredential(what, f"{folder} holds none of the files {', '.join(ALL_KEYS)}; found: "
                                          f"{', '.join(present[:5]) or 'nothing'}")
        return found

    def poll(self) -> list[tuple[str, str]]:
        """Compare every secret's file signatures with the last poll; notify and return the changed."""
        current = {
            (ns_dir.name, secret_dir.name): tuple(file_signature(secret_dir / key) for key in ALL_KEYS)
            for ns_dir in _subdirs(self.directory) for secret_dir in _subdirs(ns_dir)
        }
        changed = sorted(key for key in current.keys() | self._signatures.keys()
                         if current.get(key) != self._signatures.get(key))
        self._signatures = current
        for namespace, name in changed:
            self._notify(namespace, name)
        return changed

    async def run(self) -> None:
        if not self.directory.is_dir():
            log.info("credentials directory does not exist (yet); watching for it", directory=str(self.directory))
        while True:
            changed = self.poll()
            if changed:
                log.debug("credential files changed", secrets=[f"{ns}/{name}" for ns, name in changed])
            await asyncio.sleep(self.poll_interval_s)


def _plain(part: str) -> bool:
    return bool(part) and part not in (".", "..") and os.sep not in part and "/" not in part
