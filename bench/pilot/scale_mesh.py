"""A generated mesh at a given scale, written through the real path.

Services are ServiceEntries (MESH_INTERNAL, STATIC, one HTTP port) whose `workloadSelector`
picks their workloads, as the local mesh declares services; each workload is a registration
in `mesh-workloads`, the JSON agents write.  Config goes into `mesh-config` as galley writes
it: each resource validated by `libs.config.parse_resource`, keyed by `Resource.key` (i.e.
`libs.bus.config_key`), valued by `Resource.to_json()`.  With `static=True` the services
carry their endpoints inline instead and nothing is registered.

Service `i` lives in namespace `load-<i mod namespaces>`; replica `r` of it has address
10.r.(i div 256).(i mod 256) and labels app=svc-<i>, version=v1.  Simulated proxy `j` is
replica `j div services` of service `j mod services`, so its node IP is that workload's
address and pilot gives it inbound config for its service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bench.pilot.load_client import ProxySpec
from libs.bus import MESH_CONFIG, MESH_WORKLOADS, Bus, BusSettings, KvBucket
from libs.config import Origin, Resource, parse_resource
from libs.config.workloads import TTL_S, WorkloadRegistration

SERVICE_PORT = 80
WORKLOAD_PORT = 8080
# KV writes in flight at once (galley pipelines its writes the same way).
IN_FLIGHT = 128


@dataclass(frozen=True)
class MeshScale:
    services: int = 1000
    endpoints: int = 3
    namespaces: int = 10
    static: bool = False

    def namespace(self, service: int) -> str:
        return f"load-{service % self.namespaces:02d}"

    def name(self, service: int) -> str:
        return f"svc-{service:04d}"

    def host(self, service: int) -> str:
        return f"{self.name(service)}.{self.namespace(service)}.svc.cluster.local"

    def address(self, service: int, replica: int) -> str:
        if not 0 <= replica < 256 or service >= 65536:
            raise ValueError("at most 65,536 services of up to 256 replicas")
        return f"10.{replica}.{service // 256}.{service % 256}"

    def labels(self, service: int) -> dict[str, str]:
        return {"app": self.name(service), "version": "v1"}

    def workload(self, service: int, replica: int) -> WorkloadRegistration:
        return WorkloadRegistration(
            name=f"{self.name(service)}-{replica}", namespace=self.namespace(service),
            address=self.address(service, replica), labels=self.labels(service),
            service_account=self.name(service), ports={"http": WORKLOAD_PORT},
        )

    def endpoint_change(self, n: int) -> tuple[WorkloadRegistration, bool]:
        """The scale run's `n`th endpoint change: a workload past each service's replicas, and
        whether it registers (even `n`) or leaves again (odd `n`)."""
        return self.workload((n // 2) % self.services, self.endpoints), n % 2 == 0

    def workloads(self) -> list[WorkloadRegistration]:
        if self.static:
            return []
        return [self.workload(i, r) for i in range(self.services) for r in range(self.endpoints)]

    def service_entry(self, service: int) -> Resource:
        spec: dict[str, Any] = {
            "hosts": [self.host(service)], "location": "MESH_INTERNAL", "resolution": "STATIC",
            "ports": [{"number": SERVICE_PORT, "name": "http", "protocol": "HTTP", "targetPort": WORKLOAD_PORT}],
        }
        if self.static:
            spec["endpoints"] = [{"address": self.address(service, r), "labels": self.labels(service),
                                  "ports": {"http": WORKLOAD_PORT}} for r in range(self.endpoints)]
        else:
            spec["workloadSelector"] = {"labels": {"app": self.name(service)}}
        return validated({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                          "metadata": {"name": self.name(service), "namespace": self.namespace(service)},
                          "spec": spec})

    def service_entries(self) -> list[Resource]:
        return [self.service_entry(i) for i in range(self.services)]

    def virtual_service(self, change: int, service: int = 0) -> Resource:
        """Change `change`: the route of `service` goes to it or its neighbour (alternately),
        stamping responses with `x-change`, so every sidecar's route configuration changes."""
        destination = service if change % 2 == 0 else (service + 1) % self.services
        return validated({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": f"{self.name(service)}-route", "namespace": self.namespace(service)},
            "spec": {"hosts": [self.host(service)], "http": [{
                "route": [{"destination": {"host": self.host(destination), "port": {"number": SERVICE_PORT}}}],
                "headers": {"response": {"set": {"x-change": str(change)}}},
            }]},
        })

    def proxies(self, count: int) -> list[ProxySpec]:
        if count > self.services * self.endpoints:
            raise ValueError(f"{count} proxies need more than {self.services} x {self.endpoints} workloads")
        specs = []
        for j in range(count):
            service, replica = j % self.services, j // self.services
            specs.append(ProxySpec(index=j, pod=f"{self.name(service)}-{replica}", namespace=self.namespace(service),
                                   ip=self.address(service, replica),
                                   labels=tuple(sorted(self.labels(service).items())),
                                   service_account=self.name(service)))
        return specs


def validated(body: dict[str, Any]) -> Resource:
    """As galley admits it; a benchmark with invalid config is a bug."""
    return parse_resource(body, Origin("bench"))


async def _bounded(calls: Iterable[Callable[[], Awaitable[Any]]]) -> None:
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with limit:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


class MeshWriter:
    """Writes config as galley does and registrations as agents do, and refreshes the
    registrations every third of their TTL as agents do, so none expires."""

    def __init__(self, bus: Bus, config: KvBucket, registry: KvBucket) -> None:
        self._bus = bus
        self.config = config
        self.registry = registry
        self._registered: dict[str, bytes] = {}
        self._refresher: asyncio.Task[None] | None = None
        self.refreshes = 0

    @classmethod
    async def connect(cls, nats_url: str) -> MeshWriter:
        bus = await Bus.connect(BusSettings(url=nats_url), name="bench-load")
        config = await bus.kv(MESH_CONFIG)
        registry = await bus.kv(MESH_WORKLOADS, ttl_s=TTL_S, expiry_markers_s=TTL_S)
        return cls(bus, config, registry)

    async def put(self, resource: Resource) -> int:
        """Write one resource; return its KV revision (what pilot versions config by)."""
        return await self.config.put(resource.key, resource.to_json())

    async def write_mesh(self, scale: MeshScale) -> int:
        """Every service and workload of `scale`; return the config revision."""
        entries = scale.service_entries()
        await _bounded([lambda r=r: self.config.put(r.key, r.to_json()) for r in entries])  # type: ignore[misc]
        await _bounded([lambda w=w: self.register(w) for w in scale.workloads()])  # type: ignore[misc]
        return await self.config.last_revision()

    async def register(self, workload: WorkloadRegistration) -> int:
        value = workload.to_json()
        self._registered[workload.key] = value
        return await self.registry.put(workload.key, value)

    async def unregister(self, workload: WorkloadRegistration) -> None:
        self._registered.pop(workload.key, None)
        await self.registry.delete(workload.key)

    def start_refreshing(self, period_s: float = TTL_S / 3) -> None:
        if self._refresher is None and self._registered:
            self._refresher = asyncio.create_task(self._refresh(period_s), name="refresh-registrations")

    async def _refresh(self, period_s: float) -> None:
        """Rewrite every registration once per period, spread evenly over it."""
        ticks = max(1, int(period_s / 0.1))
        while True:
            keys = sorted(self._registered)
            for tick in range(ticks):
                started = asyncio.get_running_loop().time()
                chunk = keys[tick::ticks]
                await self.rewrite(chunk)
                await asyncio.sleep(max(0.0, period_s / ticks - (asyncio.get_running_loop().time() - started)))

    async def rewrite(self, keys: list[str]) -> None:
        """Write these registrations again, as a refresh does."""

        async def one(key: str) -> None:
            # Looked up when its turn comes: an endpoint change may have unregistered it
            # since the keys were taken, and a refresh must not bring it back.
            value = self._registered.get(key)
            if value is not None:
                await self.registry.put(key, value)

        await _bounded([lambda k=k: one(k) for k in keys])  # type: ignore[misc]
        self.refreshes += len(keys)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self._bus.close()
