"""Istio's analyzers at apply time: what `mizzenctl analyze` would say about the resources
an apply brings, over the config galley serves, returned as warnings, never refusals.

Analyzers that need the platform's services and workloads see the local mesh's: its
services are ServiceEntries (config) and its workloads those the agents registered in
`mesh-workloads`, read at each apply.  On Kubernetes galley does not watch Services or
Pods, so those analyzers are skipped (`mizzenctl analyze` reads them from pilot).
"""

from __future__ import annotations

import asyncio

import structlog

from libs.analysis import VALIDATION_CODES, Inputs, Platform, Workload, about, analyze
from libs.analysis.files import overlay
from libs.bus import MESH_WORKLOADS, Bus, BusError
from libs.config import Resource
from libs.config.workloads import TTL_S, WorkloadRegistration
from services.galley.sources import Source, merge

log = structlog.get_logger(__name__)

# What apply-time analysis knows of the platform (the galley setting `analysis_platform`).
WORKLOADS, NONE, AUTO = "workloads", "none", "auto"
PLATFORMS = (WORKLOADS, NONE, AUTO)


def _workload(registration: WorkloadRegistration) -> Workload:
    return Workload(registration.name, registration.namespace, tuple(sorted(registration.labels.items())),
                    registration.service_account, registration.address, registration.sidecar)


def findings(resources: list[Resource], applied: list[Resource], platform: Platform | None) -> list[str]:
    """istioctl's lines for what the analyzers find about `applied` over `resources`,
    less what validation already reported."""
    messages = analyze(Inputs(overlay(resources, applied), platform))
    return [str(m) for m in about(messages, refs={r.ref for r in applied}) if m.code not in VALIDATION_CODES]


class ApplyAnalysis:
    def __init__(self, bus: Bus | None, sources: list[Source], *, platform: str = WORKLOADS) -> None:
        self._bus = bus
        self._sources = sources
        self._platform = platform

    async def _platform_now(self) -> Platform | None:
        # Without NATS the workloads cannot be read; waiting out its timeout would stall
        # the apply for nothing.
        if self._platform != WORKLOADS or self._bus is None or not self._bus.connected:
            return None
        try:
            # The agents' limits, in case this opens the bucket first.
            bucket = await self._bus.kv(MESH_WORKLOADS, ttl_s=TTL_S, expiry_markers_s=TTL_S)
            entries = await bucket.entries()
        except BusError as exc:
            log.warning("apply analysis without workloads", error=str(exc))
            return None
        workloads = []
        for entry in entries.values():
            try:
                workloads.append(_workload(WorkloadRegistration.from_json(entry.value)))
            except (ValueError, KeyError, TypeError):
                continue  # the registry's readers log it; analysis does without
        return Platform(workloads=tuple(workloads))

    async def warnings(self, applied: list[Resource]) -> list[str]:
        if not applied:
            return []
        platform = await self._platform_now()
        # A copy taken on the loop: the sources change under it, the analysis runs beside it.
        resources = [resource for _, resource in merge(self._sources).values()]
        try:
            return await asyncio.to_thread(findings, resources, applied, platform)
        except Exception as exc:
            # Analysis only advises: its failure must not fail an apply.
            log.exception("apply analysis failed")
            return [f"analysis failed: {exc!r}"]
