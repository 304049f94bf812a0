"""Mizzen's services as real processes for tests: galley, pilot, agents with Envoy."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.envoy import EnvoyAdmin
from tests.harness.http import HTTP
from tests.harness.nats import NatsServer
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until

XDS_APIS = ("GRPC", "DELTA_GRPC")


def xds_api_under_test(environ: Mapping[str, str]) -> str:
    """The ADS protocol test proxies speak: MIZZEN_TEST_XDS_API=DELTA_GRPC runs a test suite
    against pilot's delta xDS, GRPC (the default) against state of the world."""
    api = environ.get("MIZZEN_TEST_XDS_API", "GRPC")
    if api not in XDS_APIS:
        # The agent would quietly fall back to GRPC, and a delta run would test nothing new.
        raise ValueError(f"MIZZEN_TEST_XDS_API={api!r}: expected one of {', '.join(XDS_APIS)}")
    return api


def _ready(port: int) -> bool:
    return HTTP.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).status_code == 200


@dataclass
class Service:
    process: Process
    monitoring_port: int

    @property
    def monitoring(self) -> str:
        return f"http://127.0.0.1:{self.monitoring_port}"

    def get(self, path: str, **params: str) -> httpx.Response:
        return HTTP.get(f"{self.monitoring}{path}", params=params or None)

    def wait_ready(self) -> None:
        wait_until(lambda: _ready(self.monitoring_port), timeout=30, what=f"{self.process.name} /readyz")

    def metric(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples (on the monitoring port) whose labels include `labels`."""
        return sum(sample.value for family in text_string_to_metric_families(self.get("/metrics").text)
                   for sample in family.samples
                   if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


@dataclass
class GalleyService(Service):
    api_port: int = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


@dataclass
class PilotService(Service):
    xds_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.xds_port}"


@dataclass
class TelemetryService(Service):
    als_port: int = 0
    prometheus_port: int = 0
    zipkin_port: int = 0
    access_log: Path | None = None

    @property
    def als_address(self) -> str:
        return f"127.0.0.1:{self.als_port}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def zipkin(self) -> str:
        return f"http://127.0.0.1:{self.zipkin_port}"

    def metrics(self) -> str:
        return HTTP.get(f"{self.prometheus}/metrics").text


POLICY_HOST = "istio-policy.istio-system.svc.cluster.local"


@dataclass
class PolicyService(Service):
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    http_check_port: int = 0

    @property
    def address(self) -> str:
        return f"{self.grpc_host}:{self.grpc_port}"

    def service_entry(self, *addresses: str) -> str:
        """The policy service's registry entry (POLICY_HOST), as the local mesh has it:
        gRPC on 9091 and checks over HTTP/1.1 on its `http-check` port, which pilot has
        proxies ask.  Replicas on `addresses` (default: this one's) share its ports."""
        ports = f"ports: {{grpc: {self.grpc_port}, http-check: {self.http_check_port}}}"
        endpoints = ", ".join(f"{{address: {a}, {ports}}}" for a in addresses or (self.grpc_host,))
        return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: istio-policy, namespace: istio-system}}
spec:
  hosts: [{POLICY_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9091, name: grpc, protocol: GRPC}}, {{number: 9094, name: http-check, protocol: HTTP}}]
  endpoints: [{endpoints}]
"""


@dataclass
class Proxy:
    process: Process
    admin: EnvoyAdmin
    node_id: str
    monitoring_port: int
    bind_address: str

    def wait_live(self) -> None:
        wait_until(self.admin.ready, timeout=30, what=f"envoy of {self.process.name} LIVE")


@dataclass
class Mesh:
    group: ProcessGroup
    nats: NatsServer
    work_dir: Path
    started: list[Service] = field(default_factory=list)

    def _common(self) -> list[str]:
        return ["--nats-url", self.nats.url, "--log-level", "debug", "--log-json"]

    def galley(self, config_dir: Path | None, *extra: str, name: str = "galley", wait: bool = True) -> GalleyService:
        port, api_port = free_port(), free_port()
        source = ["--config-dir", str(config_dir)] if config_dir is not None else []
        process = self.group.python(name, "services.galley", *self._common(), *source,
                                    "--monitoring-address", "127.0.0.1", "--monitoring-port", str(port),
                                    "--api-port", str(api_port), "--poll-interval-s", "0.05",
                                    "--replica-id", name, *extra)
        service = GalleyService(process, port, api_port)
        if wait:
            service.wait_ready()
        return service

    def telemetry(self, *extra: str, name: str = "telemetry", ports: tuple[int, int, int] | None = None
                  ) -> TelemetryService:
        """Telemetry on loopback; `ports` (ALS, Prometheus, Zipkin) given: a restart where the
        proxies already send."""
        port = free_port()
        als, prometheus, zipkin = ports or (free_port(), free_port(), free_port())
        access_log = self.work_dir / f"{name}-access.log"
        process = self.group.python(name, "services.telemetry", *self._common(), "--als-address", "127.0.0.1",
                                    "--als-port", str(als), "--prometheus-address", "127.0.0.1",
                                    "--prometheus-port", str(prometheus), "--zipkin-address", "127.0.0.1",
                                    "--zipkin-port", str(zipkin), "--monitoring-address", "127.0.0.1",
                                    "--monitoring-port", str(port), "--access-log", str(access_log), *extra)
        service = TelemetryService(process, port, als, prometheus, zipkin, access_log)
        wait_until(lambda: _ready(port), timeout=30, what=f"{name} /readyz")
        return service

    def policy(self, *extra: str, name: str = "policy", host: str = "127.0.0.1", grpc_port: int | None = None,
               http_check_port: int | None = None) -> PolicyService:
        """A policy replica on `host`; ports given (a stopped replica's, or another
        replica's on another address): proxies configured for them reconnect."""
        port, grpc_port = free_port(), grpc_port or free_port(host)
        http_check_port = http_check_port or free_port(host)
        process = self.group.python(name, "services.policy", *self._common(), "--grpc-address", host,
                                    "--grpc-port", str(grpc_port), "--http-check-port", str(http_check_port),
                                    "--monitoring-address", "127.0.0.1", "--monitoring-port", str(port), *extra)
        service = PolicyService(process, port, host, grpc_port, http_check_port)
        wait_until(lambda: _ready(port), timeout=30, what=f"{name} /readyz")
        return service

    def pilot(self, *extra: str, name: str = "pilot", xds_port: int | None = None, wait: bool = True) -> PilotService:
        """A pilot; `xds_port` given (a stopped pilot's): proxies configured for it reconnect."""
        port, xds = free_port(), xds_port or free_port()
        process = self.group.python(name, "services.pilot", *self._common(), "--xds-address", "127.0.0.1",
                                    "--xds-port", str(xds), "--monitoring-address", "127.0.0.1",
                                    "--monitoring-port", str(port), "--debounce-quiet-s", "0",
                                    "--endpoint-debounce-quiet-s", "0", *extra)
        service = PilotService(process, port, xds)
        if wait:
            service.wait_ready()
        return service

    def proxy(
        self,
        pilot: PilotService,
        *,
        name: str,
        node_type: str = "sidecar",
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        bind_address: str = "127.0.0.1",
        service_account: str = "default",
        interception: str = "REDIRECT",
        app_ports: dict[int, int] | None = None,
        extra: tuple[str, ...] = (),
        wait_live: bool = True,
        xds_api: str | None = None,
        cwd: Path | None = None,
    ) -> Proxy:
        """An agent and its Envoy; `xds_api` None: the protocol MIZZEN_TEST_XDS_API names.
        With `wait_live` false, start several and `wait_live()` each: they start together.
        `cwd`: where relative file paths in config (certificates) resolve; the test's own by
        default."""
        admin_port, monitoring_port = free_port(), free_port()
        label_arg = ",".join(f"{k}={v}" for k, v in (labels or {}).items())
        process = self.group.python(
            name, "services.agent", "--log-level", "debug", "--log-json",
            "--pilot-address", pilot.address, "--node-type", node_type, "--pod-name", name,
            "--namespace", namespace, "--instance-ip", bind_address, "--labels", label_arg,
            "--service-account", service_account, "--bind-address", bind_address,
            "--interception-mode", interception,
            "--app-ports", ",".join(f"{k}:{v}" for k, v in (app_ports or {}).items()),
            "--admin-port", str(admin_port), "--stats-port", "0", "--health-port", "0",
            "--monitoring-port", str(monitoring_port), "--state-dir", str(self.work_dir / name),
            "--envoy-log-level", "info", "--envoy-concurrency", "1",
            "--xds-api", xds_api or xds_api_under_test(os.environ), *extra, cwd=cwd,
        )
        node_id = f"{node_type}~{bind_address}~{name}.{namespace}~{namespace}.svc.cluster.local"
        proxy = Proxy(process, EnvoyAdmin("127.0.0.1", admin_port), node_id, monitoring_port, bind_address)
        if wait_live:
            proxy.wait_live()
        return proxy
