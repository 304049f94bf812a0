"""The service ports a proxy's own workload serves (Istio's ServiceInstances)."""

from __future__ import annotations

from dataclasses import dataclass

from services.pilot.model.proxy import Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.services import Endpoint, Service, ServicePort


@dataclass(frozen=True)
class ServiceInstance:
    service: Service
    port: ServicePort
    endpoint: Endpoint

    @property
    def target_port(self) -> int:
        """Where traffic for this service port arrives at the workload."""
        return self.endpoint.port


def service_instances(proxy: Proxy, push: PushContext) -> list[ServiceInstance]:
    return [ServiceInstance(service, port, endpoint) for service, port, endpoint in push.endpoints_at(proxy.ip)]
