"""What `mizzenctl up` runs: every process of the local mesh, in start order.

The control plane listens on 127.0.0.1 (each service on its own ports), every workload
on its own loopback address (127.0.10.x) so they can all use port 9080, the ingress
gateway on `--ingress-address`, the egress gateway on 127.0.2.2.  Nothing binds outside
127.0.0.0/8.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from libs.capture.iptables import PROXY_UID
from libs.envoy.binaries import nats_server_binary
from libs.mixer import CHECK_HTTP_PORT_NAME
from tools.localmesh import bookinfo
from tools.localmesh.processes import ProcessSpec


@dataclass(frozen=True)
class Ports:
    nats: int = 14222
    galley_monitoring: int = 15016
    galley_api: int = 15019
    pilot_xds: int = 15010
    pilot_monitoring: int = 15014
    citadel_grpc: int = 8060
    citadel_monitoring: int = 9093
    telemetry_als: int = 9092
    telemetry_prometheus: int = 42422
    telemetry_zipkin: int = 9411
    telemetry_monitoring: int = 15024
    policy_grpc: int = 9091
    policy_http_check: int = 9094
    policy_monitoring: int = 15025
    # Not 6379: a Redis the machine already runs keeps its port.  Reached as
    # redis-release-master:6379 through the registry.
    redis: int = 16379
    # Per proxy, on the proxy's own address.
    envoy_admin: int = 15000
    agent_monitoring: int = 15020
    envoy_stats: int = 15090
    envoy_health: int = 15021


@dataclass(frozen=True)
class MeshOptions:
    state_dir: Path
    app: str = "bookinfo"
    ingress_address: str = "127.0.0.1"
    capture: str = "proxy"
    ports: Ports = field(default_factory=Ports)
    # The mesh lives in 127.<subnet>.0.0/16, so several meshes (a demo and a test run)
    # can share a machine: control plane on .0.1, workloads on .10.x, egress on .2.2.
    subnet: int = 0

    def address(self, third: int, fourth: int) -> str:
        return f"127.{self.subnet}.{third}.{fourth}"

    @property
    def iptables(self) -> bool:
        return self.capture == "iptables"

    @property
    def bridge_address(self) -> str:
        """With iptables capture, workloads live on a bridge in 10.222.<subnet>.0/24."""
        return f"10.222.{self.subnet}.1"

    def workload_address(self, index: int) -> str:
        return f"10.222.{self.subnet}.{10 + index}" if self.iptables else self.address(10, index)

    @property
    def control(self) -> str:
        # Under capture the control plane must be reachable from inside every namespace.
        return self.bridge_address if self.iptables else self.address(0, 1)

    @property
    def egress_address(self) -> str:
        return self.address(2, 2)

    @property
    def nats_url(self) -> str:
        return f"nats://{self.control}:{self.ports.nats}"

    @property
    def config_dir(self) -> Path:
        return self.state_dir / "config"

    @property
    def galley_url(self) -> str:
        return f"http://{self.control}:{self.ports.galley_api}"

    @property
    def pilot_url(self) -> str:
        return f"http://{self.control}:{self.ports.pilot_monitoring}"

    @property
    def telemetry_url(self) -> str:
        """Istio's metrics (/metrics) and the live service graph (/graph)."""
        return f"http://{self.control}:{self.ports.telemetry_prometheus}"

    @property
    def policy_url(self) -> str:
        return f"http://{self.control}:{self.ports.policy_monitoring}"

    @property
    def zipkin_url(self) -> str:
        return f"http://{self.control}:{self.ports.telemetry_zipkin}"

    @property
    def monitoring_urls(self) -> dict[str, str]:
        """Each control-plane service's monitoring server (/healthz, /metrics, /version)."""
        p = self.ports
        return {name: f"http://{self.control}:{port}" for name, port in (
            ("galley", p.galley_monitoring), ("pilot", p.pilot_monitoring), ("citadel", p.citadel_monitoring),
            ("telemetry", p.telemetry_monitoring), ("policy", p.policy_monitoring))}


@dataclass(frozen=True)
class Proxy:
    """A proxy the mesh waits on: its node name and admin address."""

    name: str
    namespace: str
    address: str


@dataclass
class Plan:
    stages: list[list[ProcessSpec]]
    proxies: list[Proxy]


def _python() -> str:
    return sys.executable


def control_plane(options: MeshOptions) -> list[list[ProcessSpec]]:
    p, s, control = options.ports, options.state_dir, options.control
    common = ["--nats-url", options.nats_url, "--log-level", "info", "--log-json"]
    nats = ProcessSpec("nats", [str(nats_server_binary()), "-js", "-a", control, "-p", str(p.nats),
                                "-sd", str(s / "nats")])
    galley = ProcessSpec(
        "galley", [_python(), "-m", "services.galley", *common, "--config-dir", str(options.config_dir),
                   "--monitoring-address", control, "--monitoring-port", str(p.galley_monitoring),
                   "--api-address", control, "--api-port", str(p.galley_api),
                   "--api-token-file", str(s / "galley-token"), "--webhook-port", "0",
                   # One galley, restarted under its own name: it takes its lease back at
                   # once instead of waiting for its earlier run's lease to expire.
                   "--replica-id", "galley"],
        ready_url=f"http://{control}:{p.galley_monitoring}/readyz")
    pilot = ProcessSpec(
        "pilot", [_python(), "-m", "services.pilot", *common, "--xds-address", control, "--xds-port", str(p.pilot_xds),
                  "--monitoring-address", control, "--monitoring-port", str(p.pilot_monitoring)],
        ready_url=f"{options.pilot_url}/readyz")
    citadel = ProcessSpec(
        "citadel", [_python(), "-m", "services.citadel", *common, "--grpc-address", control,
                    "--grpc-port", str(p.citadel_grpc), "--monitoring-address", control,
                    "--monitoring-port", str(p.citadel_monitoring), "--state-dir", str(s / "citadel"),
                    "--serving-hosts", f"{control},localhost"],
        ready_url=f"http://{control}:{p.citadel_monitoring}/readyz")
    telemetry = ProcessSpec(
        "telemetry", [_python(), "-m", "services.telemetry", *common, "--als-address", control,
                      "--als-port", str(p.telemetry_als), "--prometheus-address", control,
                      "--prometheus-port", str(p.telemetry_prometheus), "--zipkin-address", control,
                      "--zipkin-port", str(p.telemetry_zipkin), "--monitoring-address", control,
                      "--monitoring-port", str(p.telemetry_monitoring),
                      "--access-log", str(s / "logs" / "access.log")],
        ready_url=f"http://{control}:{p.telemetry_monitoring}/readyz")
    policy = ProcessSpec(
        "policy", [_python(), "-m", "services.policy", *common, "--grpc-address", control,
                   "--grpc-port", str(p.policy_grpc), "--http-check-port", str(p.policy_http_check),
                   "--monitoring-address", control,
                   "--monitoring-port", str(p.policy_monitoring)],
        ready_url=f"http://{control}:{p.policy_monitoring}/readyz")
    first = [nats]
    redis = redis_server()
    if redis is not None:
        first.append(ProcessSpec("redis", [redis, "--bind", control, "--port", str(p.redis), "--save", "",
                                           "--appendonly", "no", "--dir", str(s)]))
    return [first, [galley, pilot, citadel, telemetry, policy]]


def redis_server() -> str | None:
    """Debian's redis-server, when installed: the local mesh runs it for redisquota."""
    return shutil.which("redis-server") or (REDIS_SBIN if os.access(REDIS_SBIN, os.X_OK) else None)


REDIS_SBIN = "/usr/sbin/redis-server"


def _service_entry(name: str, host: str, ports: list[tuple[int, str, str]], address: str,
                   target_ports: dict[str, int] | None = None) -> str:
    """A ServiceEntry in istio-system for a control-plane or platform service on `address`;
    `ports` as (number, name, protocol), `target_ports` by port name where they differ."""
    listed = ", ".join(f"{{number: {number}, name: {name}, protocol: {protocol}}}" for number, name, protocol in ports)
    target = (", ports: {" + ", ".join(f"{name}: {port}" for name, port in target_ports.items()) + "}"
              if target_ports else "")
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: istio-system
spec:
  hosts: [{host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{listed}]
  endpoints: [{{address: {address}{target}}}]
"""


def policy_service(options: MeshOptions) -> str:
    """The policy service as a mesh service: Mixer-style checks and AuthorizationPolicy
    CUSTOM providers reach it by name, pilot preferring its `http-check` port for checks."""
    p = options.ports
    return _service_entry("istio-policy", "istio-policy.istio-system.svc.cluster.local",
                          [(p.policy_grpc, "grpc", "GRPC"), (p.policy_http_check, CHECK_HTTP_PORT_NAME, "HTTP")],
                          options.control)


def redis_service(options: MeshOptions) -> str:
    """The local mesh's Redis under the name Istio's rate-limit task installs it as (the
    `redis-release` Helm release in istio-system), so its redisquota samples work as written."""
    return _service_entry("redis-release-master", "redis-release-master.istio-system.svc.cluster.local",
                          [(6379, "tcp-redis", "TCP")], options.control,
                          target_ports={"tcp-redis": options.ports.redis})


def mesh_config(options: MeshOptions) -> str:
    """The local mesh's mesh config (Istio's `istio` ConfigMap): every proxy reports to
    telemetry, and every request is traced, as Istio's demo profile does; Mixer-style policy
    checks go to the policy service (only workloads its rules reach get the filter), which
    is also the `mizzen-policy` provider AuthorizationPolicy's CUSTOM action can name."""
    control, p = options.control, options.ports
    return f"""\
# The local mesh's mesh config, as Istio keeps it: edit this file and galley applies it.
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |-
    rootNamespace: istio-system
    trustDomain: cluster.local
    enableEnvoyAccessLogService: true
    enableTracing: true
    mixerCheckServer: istio-policy.istio-system.svc.cluster.local:{p.policy_grpc}
    policyCheckFailOpen: false
    extensionProviders:
    - name: mizzen-policy
      envoyExtAuthzGrpc:
        service: istio-policy.istio-system.svc.cluster.local
        port: {p.policy_grpc}
    defaultConfig:
      envoyAccessLogService:
        address: {control}:{p.telemetry_als}
      tracing:
        sampling: 100
        zipkin:
          address: {control}:{p.telemetry_zipkin}
"""


def agent_argv(options: MeshOptions, *, name: str, namespace: str, address: str, labels: dict[str, str],
               service_account: str, node_type: str = "sidecar", app_port: int | None = None) -> list[str]:
    p, s, control = options.ports, options.state_dir, options.control
    argv = [
        _python(), "-m", "services.agent", "--log-level", "info", "--log-json",
        "--pilot-address", f"{control}:{p.pilot_xds}", "--node-type", node_type, "--pod-name", name,
        "--namespace", namespace, "--instance-ip", address, "--bind-address", address,
        "--labels", ",".join(f"{k}={v}" for k, v in labels.items()), "--service-account", service_account,
        "--interception-mode", "NONE" if options.capture == "proxy" else "REDIRECT",
        "--admin-address", address, "--admin-port", str(p.envoy_admin),
        "--stats-port", str(p.envoy_stats), "--health-port", str(p.envoy_health),
        "--monitoring-address", address, "--monitoring-port", str(p.agent_monitoring),
        "--state-dir", str(s / "proxies" / name), "--envoy-concurrency", "1",
        "--identity-enabled", "--citadel-address", f"{control}:{p.citadel_grpc}",
        "--citadel-root-cert", str(s / "citadel" / "root-cert.pem"),
        "--citadel-token-file", str(s / "tokens" / name), "--trust-nats-url", options.nats_url,
    ]
    # Gateways register too: they are workloads whose address telemetry must name.
    argv += ["--registry-nats-url", options.nats_url]
    if options.iptables and node_type == "sidecar":
        # Captured: listeners on 0.0.0.0 inside the namespace; Envoy runs as the proxy user.
        argv[argv.index("--bind-address") + 1] = ""
        argv[argv.index("--citadel-root-cert") + 1] = str(s / "ca" / "root-cert.pem")
        # Admin stays on the namespace's loopback, out of the capture rules' way (as
        # Istio's); the launcher watches readiness on the health port instead.
        argv[argv.index("--admin-address") + 1] = "127.0.0.1"
    elif app_port is not None:
        argv += ["--app-ports", f"{bookinfo.SERVICE_PORT}:{app_port}"]
    return argv


def _live(address: str, ports: Ports) -> str:
    return f"http://{address}:{ports.envoy_admin}/ready"


def gateways(options: MeshOptions) -> tuple[list[ProcessSpec], list[Proxy]]:
    specs, proxies = [], []
    for name, address, labels in (
        ("istio-ingressgateway", options.ingress_address, {"istio": "ingressgateway", "app": "istio-ingressgateway"}),
        ("istio-egressgateway", options.egress_address, {"istio": "egressgateway", "app": "istio-egressgateway"}),
    ):
        argv = agent_argv(options, name=name, namespace="istio-system", address=address, labels=labels,
                          service_account=f"{name}-service-account", node_type="router")
        specs.append(ProcessSpec(name, argv, ready_url=_live(address, options.ports), ready_body="LIVE"))
        proxies.append(Proxy(name, "istio-system", address))
    return specs, proxies


def netns_name(options: MeshOptions, workload: str) -> str:
    return f"mz{options.subnet}-{workload}"


def workloads(options: MeshOptions) -> tuple[list[ProcessSpec], list[Proxy]]:
    if options.app != "bookinfo":
        return [], []
    specs, proxies = [], []
    for workload in bookinfo.workloads(options.subnet, options.workload_address):
        argv = agent_argv(options, name=workload.name, namespace="default", address=workload.address,
                          labels=workload.labels, service_account=workload.service_account,
                          app_port=workload.app_port)
        if options.iptables:
            # The app on its real port, reaching others by name through the capture rules.
            ns = ["ip", "netns", "exec", netns_name(options, workload.name)]
            app = [*ns, *bookinfo.app_argv(_python(), workload, port=bookinfo.SERVICE_PORT, host="0.0.0.0")]
            specs.append(ProcessSpec(f"{workload.name}-app", app, env={"HTTP_PROXY": "", "http_proxy": ""},
                                     ready_url=None))
            argv = [*ns, "setpriv", f"--reuid={PROXY_UID}", f"--regid={PROXY_UID}", "--clear-groups", *argv]
        else:
            proxy_url = f"http://{workload.address}:15001"
            specs.append(ProcessSpec(
                f"{workload.name}-app", bookinfo.app_argv(_python(), workload),
                env={"HTTP_PROXY": proxy_url, "http_proxy": proxy_url},
                ready_url=f"http://{workload.address}:{workload.app_port}/health"))
        ready = (f"http://{workload.address}:{options.ports.envoy_health}/healthz/ready" if options.iptables
                 else _live(workload.address, options.ports))
        # As an injected pod's: the app's probes, served by the agent on its monitoring port
        # (the app listens on the service port under capture, beside its sidecar otherwise).
        probed = bookinfo.SERVICE_PORT if options.iptables else workload.app_port
        env = {"ISTIO_KUBE_APP_PROBERS": bookinfo.app_probers(workload, probed)}
        specs.append(ProcessSpec(f"{workload.name}-proxy", argv, env=env, ready_url=ready, ready_body="LIVE"))
        proxies.append(Proxy(workload.name, "default", workload.address))
    return specs, proxies


def identities(options: MeshOptions) -> list[tuple[str, str, str]]:
    """(proxy name, namespace, service account) of every proxy that needs a token."""
    found = ([(w.name, "default", w.service_account)
              for w in bookinfo.workloads(options.subnet, options.workload_address)]
             if options.app == "bookinfo" else [])
    found += [(name, "istio-system", f"{name}-service-account")
              for name in ("istio-ingressgateway", "istio-egressgateway")]
    return found


def plan(options: MeshOptions) -> Plan:
    """NATS (and Redis) first (everything else needs it to start); then the rest at once: agents and
    Envoys retry until pilot and citadel answer, and starting them together is what
    keeps `up` short on two cores."""
    first, control = control_plane(options)
    workload_specs, workload_proxies = workloads(options)
    gateway_specs, gateway_proxies = gateways(options)
    if options.iptables:
        # Captured workloads run as another user and read citadel's root from a copy the
        # launcher makes once citadel has created it: they start after the control plane.
        stages = [first, control, [*workload_specs, *gateway_specs]]
    else:
        stages = [first, [*control, *workload_specs, *gateway_specs]]
    return Plan(stages, [*workload_proxies, *gateway_proxies])


def new_token() -> str:
    return secrets.token_urlsafe(24)
