"""The local mesh's workload registry (`mesh-workloads`, written by agents) as one of
pilot's service registries.

Registered workloads become endpoints of the ServiceEntries whose `workloadSelector`
matches them, exactly as WorkloadEntries do; the registry defines no services itself.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

import structlog

from libs.bus import KvBucket, KvSynced
from libs.config.workloads import WorkloadRegistration
from libs.runtime import Supervisor
from services.pilot.model.registry import RegistryContents
from services.pilot.model.serviceentry import WorkloadInstance

log = structlog.get_logger(__name__)


def instance_of(registration: WorkloadRegistration) -> WorkloadInstance:
    return WorkloadInstance(
        name=registration.name, namespace=registration.namespace, address=registration.address,
        labels=tuple(sorted(registration.labels.items())), ports=tuple(sorted(registration.ports.items())),
        service_account=registration.service_account, locality=registration.locality, sidecar=registration.sidecar,
    )


class WorkloadWatcher:
    name = "mesh-workloads"

    def __init__(self, bucket: KvBucket, *, on_synced: Callable[[], None], on_change: Callable[[], None]) -> None:
        self._bucket = bucket
        self._on_synced = on_synced
        self._on_change = on_change
        self._instances: dict[str, WorkloadInstance] = {}
        # Each registration's digest and their sum: the version, kept as registrations come
        # and go rather than recomputed over thousands of them on every push.
        self._digests: dict[str, int] = {}
        self._digest_sum = 0
        # Each registration as last written: an agent's refresh rewrites the same bytes,
        # hundreds of times a second across a large mesh, and is recognised without decoding.
        self._written: dict[str, bytes] = {}
        self._contents: RegistryContents | None = None
        self.synced = False

    def instances(self) -> list[WorkloadInstance]:
        return [self._instances[key] for key in sorted(self._instances)]

    def start(self, supervisor: Supervisor) -> None:
        supervisor.start("workloads-watch", self.run)

    def contents(self) -> RegistryContents:
        """The registry as a push reads it; the same object until a registration changes."""
        if self._contents is None:
            self._contents = RegistryContents(self.name, workloads=tuple(self.instances()), version=self.version())
        return self._contents

    def version(self) -> str:
        """A digest of the registered workloads: refreshes bump KV revisions without
        changing anything, so the content, not the revision, versions it — and every pilot
        replica computes the same version for the same workloads.  The sum of each
        registration's own digest, so one that comes or goes costs one digest, whatever
        the order they arrived in."""
        if not self._instances:
            return ""
        return f"{self._digest_sum % 2**32:08x}"

    def _apply(self, key: str, value: bytes | None, revision: int) -> bool:
        if value is None:
            self._written.pop(key, None)
            if self._instances.pop(key, None) is None:
                return False
            self._digest_sum -= self._digests.pop(key)
            self._contents = None
            return True
        if self._written.get(key) == value:
            return False
        try:
            instance = instance_of(WorkloadRegistration.from_json(value))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("ignoring unreadable workload registration", key=key, error=repr(exc))
            return False
        self._written[key] = value
        if self._instances.get(key) == instance:
            # A refresh: the agent proving it is alive, nothing for Envoy.
            return False
        digest = int.from_bytes(hashlib.blake2b(repr((key, instance)).encode(), digest_size=8).digest(), "big")
        self._digest_sum += digest - self._digests.get(key, 0)
        self._digests[key] = digest
        self._instances[key] = instance
        self._contents = None
        return True

    async def run(self) -> None:
        async with contextlib.aclosing(self._bucket.watch()) as events:
            async for event in events:
                if isinstance(event, KvSynced):
                    if not self.synced:
                        self.synced = True
                        log.info("mesh-workloads loaded", workloads=len(self._instances))
                        self._on_synced()
                    continue
                changed = self._apply(event.key, event.value, event.revision)
                if self.synced and changed:
                    self._on_change()
