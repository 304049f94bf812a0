"""Registers the workload in the local mesh's registry (`mesh-workloads`) and keeps the
entry fresh; pilot turns it into endpoints of the ServiceEntries that select it.

The bucket expires entries that are not rewritten in time, so a workload whose agent
dies leaves the mesh by itself; a clean stop deletes the entry at once.
"""

from __future__ import annotations

import asyncio

import structlog

from libs.bus import MESH_WORKLOADS, Bus, BusError, BusSettings
from libs.config.workloads import TTL_S, WorkloadRegistration
from services.agent.settings import AgentSettings

log = structlog.get_logger(__name__)


def registration(settings: AgentSettings) -> WorkloadRegistration:
    ports: dict[str, int] = {}
    for item in settings.workload_ports:
        name, _, port = item.partition(":")
        if port.isdigit():
            ports[name] = int(port)
    return WorkloadRegistration(
        name=settings.pod_name or "proxy", namespace=settings.namespace, address=settings.instance_ip,
        labels=settings.label_map, service_account=settings.service_account, ports=ports,
        sidecar=settings.identity_enabled,
    )


class Registrar:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.entry = registration(settings)
        self._bus: Bus | None = None

    async def run(self) -> None:
        """Register, then rewrite the entry every `registry_refresh_s` (a third of the
        bucket's TTL).  After a failed write the bucket is opened again before the next:
        a NATS that came back without its storage has no bucket until someone creates it,
        and the entry must be back before pilot's copy of it expires."""
        self._bus = await Bus.connect(BusSettings(url=self.settings.registry_nats_url, connect_timeout_s=None),
                                      name=f"agent-{self.entry.key}")
        log.info("registering workload", workload=self.entry.key, address=self.entry.address)
        reopen = False
        while True:
            try:
                bucket = await self._bus.kv(MESH_WORKLOADS, ttl_s=TTL_S, expiry_markers_s=TTL_S, reopen=reopen)
                await bucket.put(self.entry.key, self.entry.to_json())
                reopen = False
            except BusError as exc:
                reopen = True
                log.warning("workload registration failed; retrying", workload=self.entry.key, error=str(exc))
            await asyncio.sleep(self.settings.registry_refresh_s)

    async def deregister(self) -> None:
        if self._bus is None:
            return
        try:
            bucket = await self._bus.kv(MESH_WORKLOADS)
            await bucket.delete(self.entry.key)
            log.info("workload deregistered", workload=self.entry.key)
        except BusError as exc:
            log.warning("could not deregister; the entry will expire", workload=self.entry.key, error=str(exc))
        finally:
            await self._bus.close()
