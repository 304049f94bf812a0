"""A directory of YAML, watched recursively by polling file signatures.

Each file is parsed whole.  What was valid before survives a bad edit: if a file stops
parsing, its previous resources stay; if one resource in it becomes invalid, that
resource's previous version stays while the file's other resources update.

A changed file is read only once it has held still for one poll (the same size, mtime and
inode on two scans in a row).  A writer that rewrites a file in place (`>`, `write_text`)
truncates it first: read in that moment, the file is empty and valid, and every resource it
held would be deleted from the mesh until the write finished.  The first scan reads at once,
as there is nothing yet to protect.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from libs.bus import config_key
from libs.config import DEFAULT_LIMITS, LoadLimits, Origin, Resource, parse_text, warnings_of

log = structlog.get_logger(__name__)

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class _FileState:
    signature: tuple[int, int, int]
    resources: dict[str, tuple[Origin, Resource]] = field(default_factory=dict)


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class FileSource:
    def __init__(
        self,
        root: Path,
        *,
        default_namespace: str = "default",
        limits: LoadLimits = DEFAULT_LIMITS,
        poll_interval_s: float = 0.2,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = root
        self.default_namespace = default_namespace
        self.limits = limits
        self.poll_interval_s = poll_interval_s
        self._on_change = on_change
        self._files: dict[Path, _FileState] = {}
        # Changed files seen once, by the signature they had: read if the next scan agrees.
        self._settling: dict[Path, tuple[int, int, int]] = {}
        self.errors: dict[str, list[str]] = {}
        self.name = "files"
        self._synced = False

    @property
    def synced(self) -> bool:
        return self._synced

    def resources(self) -> dict[str, tuple[Origin, Resource]]:
        """Every resource by mesh-config key; on a conflict the first file (by path) wins."""
        merged: dict[str, tuple[Origin, Resource]] = {}
        for path in sorted(self._files):
            for key, entry in self._files[path].resources.items():
                if key in merged:
                    log.warning("resource defined twice; keeping the first", resource=entry[1].ref,
                                kept=str(merged[key][0]), ignored=str(entry[0]))
                    continue
                merged[key] = entry
        return merged

    def _walk(self) -> dict[Path, os.stat_result]:
        found: dict[Path, os.stat_result] = {}
        if not self.root.is_dir():
            return found
        for directory, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if name.startswith(".") or not name.endswith(_SUFFIXES):
                    continue
                path = Path(directory) / name
                try:
                    found[path] = path.stat()
                except FileNotFoundError:
                    continue
        return found

    def scan(self) -> bool:
        """Re-read files that changed and then held still for a scan; True if any file was
        added, changed or removed.

        Builds the new state aside and swaps it in at once, so readers on the event loop
        never see a half-scanned directory (scans run in a worker thread).
        """
        current = self._walk()
        files = dict(self._files)
        changed = False
        for path in set(files) - current.keys():
            log.info("config file removed", file=str(path))
            del files[path]
            self.errors.pop(str(path), None)
            changed = True
        settling: dict[Path, tuple[int, int, int]] = {}
        for path, stat in current.items():
            signature = _signature(stat)
            previous = files.get(path)
            if previous is not None and previous.signature == signature:
                continue
            if self._synced and self._settling.get(path) != signature:
                settling[path] = signature
                continue
            files[path] = self._load(path, signature, previous)
            changed = True
        self._settling = settling
        self._files = files
        self._synced = True
        return changed

    def _load(self, path: Path, signature: tuple[int, int, int], previous: _FileState | None) -> _FileState:
        old = previous.resources if previous else {}
        try:
            if signature[1] > self.limits.max_bytes:
                raise OSError(f"{signature[1]} bytes is more than the {self.limits.max_bytes}-byte limit")
            data = path.read_bytes()
        except OSError as exc:
            log.error("config file unreadable; keeping its previous resources", file=str(path), error=str(exc))
            self.errors[str(path)] = [f"{path}: {exc}"]
            return _FileState(signature, dict(old))
        result = parse_text(data, str(path), default_namespace=self.default_namespace, limits=self.limits)
        problems = result.errors()
        for line in problems:
            log.error("invalid config", error=line, file=str(path))
        for unsupported in result.unsupported:
            log.warning("unsupported kind ignored", error=str(unsupported), file=str(path))
        if result.unreadable and not result.resources and not result.invalid:
            # The whole file is unreadable: keep everything it held before.
            self.errors[str(path)] = problems
            return _FileState(signature, dict(old))
        resources: dict[str, tuple[Origin, Resource]] = {}
        for origin, resource in result.resources:
            for warning in warnings_of(resource):
                log.warning("config warning", resource=resource.ref, file=str(origin), warning=str(warning))
            resources[resource.key] = (origin, resource)
        for invalid in result.invalid:
            try:
                key = config_key(invalid.kind, invalid.namespace, invalid.name)
            except ValueError:
                continue
            if key in old and key not in resources:
                resources[key] = old[key]
        if problems:
            self.errors[str(path)] = problems
        else:
            self.errors.pop(str(path), None)
        log.info("config file loaded", file=str(path), resources=len(resources), errors=len(problems))
        return _FileState(signature, resources)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if await asyncio.to_thread(self.scan):
                self._on_change()
