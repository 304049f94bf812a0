"""Running the local mesh in the foreground: start it stage by stage, wait until every
proxy is SYNCED, keep every process alive (restart with backoff), stop it all on
SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import structlog

from libs.capture import CaptureSettings
from libs.capture.iptables import PROXY_UID
from libs.runtime import Supervisor
from services.citadel.cli import mint_bootstrap_token
from tools.localmesh import bookinfo, netns
from tools.localmesh.plan import (
    MeshOptions,
    Plan,
    identities,
    mesh_config,
    netns_name,
    new_token,
    plan,
    policy_service,
    redis_server,
    redis_service,
)
from tools.localmesh.processes import ManagedProcess, ProcessFailed
from tools.localmesh.state import MeshState, ProcessState

log = structlog.get_logger(__name__)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TOKEN_TTL_S = 30 * 86400


def prepare(options: MeshOptions) -> None:
    """State dir, the platform config galley watches, and the galley API token."""
    state = options.state_dir
    for directory in (state, state / "logs", options.config_dir, state / "tokens", state / "proxies"):
        directory.mkdir(parents=True, exist_ok=True)
    token = state / "galley-token"
    if not token.exists():
        token.write_text(new_token() + "\n")
        token.chmod(0o600)
    (options.config_dir / "egress-gateway-service.yaml").write_text(
        bookinfo.egress_gateway_service(options.egress_address))
    (options.config_dir / "istio-policy-service.yaml").write_text(policy_service(options))
    redis = options.config_dir / "redis-service.yaml"
    if redis_server() is not None:
        redis.write_text(redis_service(options))
    else:
        redis.unlink(missing_ok=True)
        log.warning("redis-server is not installed (Debian package redis-server): redisquota handlers will "
                    "fail their requests until a Redis answers")
    mesh = options.config_dir / "mesh.yaml"
    if not mesh.exists():
        # Written once: it is the user's to edit from then on.
        mesh.write_text(mesh_config(options))
    if options.app == "bookinfo":
        vips = bookinfo.virtual_ips(options.subnet) if options.iptables else None
        (options.config_dir / "bookinfo-platform.yaml").write_text(bookinfo.platform_config(vips=vips))
        (options.config_dir / "bookinfo-gateway.yaml").write_text(
            (SAMPLES / "bookinfo" / "networking" / "bookinfo-gateway.yaml").read_text())


def mint_tokens(options: MeshOptions, identities: list[tuple[str, str, str]]) -> None:
    for name, namespace, account in identities:
        path = options.state_dir / "tokens" / name
        path.write_text(mint_bootstrap_token(options.state_dir / "citadel", namespace, account, TOKEN_TTL_S))
        path.chmod(0o600)


async def proxies_not_synced(client: httpx.AsyncClient, pilot_url: str, plan_: Plan) -> list[str]:
    """Proxies of the plan that are not yet SYNCED according to pilot (empty: all are)."""
    try:
        state = (await client.get(f"{pilot_url}/debug/syncz")).json()
    except (httpx.HTTPError, ValueError):
        return [p.name for p in plan_.proxies]
    synced = set()
    for entry in state.get("proxies", []):
        types = entry.get("types", {})
        if types and all(not t["awaiting_ack"] and t["acked"] == t["sent"] for t in types.values()):
            synced.add(entry["proxy"].split("~")[2])
    return [p.name for p in plan_.proxies if f"{p.name}.{p.namespace}" not in synced]


def _namespaces(options: MeshOptions) -> tuple[netns.Bridge, list[netns.Namespace]]:
    bridge = netns.Bridge(f"mzbr{options.subnet}", options.bridge_address, prefix=24)
    workloads = bookinfo.workloads(options.subnet, options.workload_address) if options.app == "bookinfo" else []
    return bridge, [netns.Namespace(netns_name(options, w.name), w.address, bridge) for w in workloads]


def create_namespaces(options: MeshOptions) -> None:
    """A namespace per workload, on one bridge, with Istio's capture rules and a hosts file
    naming the services' virtual IPs; the proxy user owns what its agent must write."""
    bridge, namespaces = _namespaces(options)
    bridge.create()
    hosts = {f"{service} {service}.default {service}.default.svc {service}.default.svc.cluster.local": vip
             for service, vip in bookinfo.virtual_ips(options.subnet).items()}
    for namespace in namespaces:
        namespace.create(hosts, CaptureSettings())
    # The proxy user walks to its files: the state dir must be traversable.
    for directory in (options.state_dir, options.state_dir / "proxies", options.state_dir / "tokens"):
        directory.chmod(0o755)
    for name, _, _ in identities(options):
        (options.state_dir / "proxies" / name).mkdir(parents=True, exist_ok=True)
        os.chown(options.state_dir / "proxies" / name, PROXY_UID, PROXY_UID)
        os.chown(options.state_dir / "tokens" / name, PROXY_UID, PROXY_UID)


def delete_namespaces(options: MeshOptions) -> None:
    bridge, namespaces = _namespaces(options)
    for namespace in namespaces:
        namespace.delete()
    bridge.delete()


def publish_root(options: MeshOptions) -> None:
    """A world-readable copy of citadel's root for agents running as the proxy user."""
    target = options.state_dir / "ca" / "root-cert.pem"
    target.parent.mkdir(exist_ok=True)
    target.parent.chmod(0o755)
    shutil.copyfile(options.state_dir / "citadel" / "root-cert.pem", target)
    target.chmod(0o644)


class LocalMesh:
    def __init__(self, options: MeshOptions, identities: list[tuple[str, str, str]]) -> None:
        self.options = options
        self.plan = plan(options)
        self.identities = identities
        # The processes as they were started, stage by stage (the plan's stages).
        self.stages: list[list[ManagedProcess]] = []
        # Each child's restart loop is a task of this supervisor: one that raises stops
        # the mesh with the reason, instead of leaving that child silently unwatched.
        self.supervisor = Supervisor("localmesh")
        self.status = "starting"

    @property
    def processes(self) -> list[ManagedProcess]:
        return [process for stage in self.stages for process in stage]

    def state(self) -> MeshState:
        return MeshState(
            pid=os.getpid(), status=self.status, ingress=f"http://{self.options.ingress_address}:8080",
            galley=self.options.galley_url, pilot=self.options.pilot_url,
            processes=[ProcessState(p.spec.name, p.pid, str(p.log_path), p.restarts, p.last_exit, p.crash_looping)
                       for p in self.processes],
            proxies=[f"{p.name}.{p.namespace}" for p in self.plan.proxies],
            app=self.options.app, capture=self.options.capture, subnet=self.options.subnet,
            nats=self.options.nats_url, telemetry=self.options.telemetry_url, zipkin=self.options.zipkin_url,
            policy=self.options.policy_url, monitoring=self.options.monitoring_urls,
        )

    async def start(self, say: Callable[[str], None]) -> None:
        prepare(self.options)
        # Tokens are signed with citadel's key, which the first of citadel or this creates.
        mint_tokens(self.options, self.identities)
        if self.options.iptables:
            create_namespaces(self.options)
        for index, stage in enumerate(self.plan.stages):
            if self.options.iptables and index == len(self.plan.stages) - 1:
                publish_root(self.options)
            started = [ManagedProcess(spec, self.options.state_dir / "logs", on_exit=self._exited) for spec in stage]
            self.stages.append(started)
            for process in started:
                await process.start()
            self.state().write(self.options.state_dir)
            say(f"  started {', '.join(p.spec.name for p in started)}")
            await asyncio.gather(*(p.wait_ready(timeout_s=60) for p in started))
            for process in started:
                self.supervisor.start(f"supervise-{process.spec.name}", process.supervise)
        deadline = time.monotonic() + 60
        # One client for the whole wait: building one per poll cost 34 - 60 ms of CPU (its
        # SSL context) ten times a second, taken from the services being waited for.
        async with httpx.AsyncClient(timeout=2.0) as client:
            while waiting := await proxies_not_synced(client, self.options.pilot_url, self.plan):
                if time.monotonic() > deadline:
                    raise ProcessFailed(f"proxies not SYNCED after 60 s: {', '.join(waiting)}")
                await asyncio.sleep(0.1)
        self.status = "ready"
        self.state().write(self.options.state_dir)

    def _exited(self, _: ManagedProcess) -> None:
        # At once, so `mizzenctl status` shows a crash before the next refresh.
        self.state().write(self.options.state_dir)

    async def keep_state_fresh(self) -> None:
        while True:
            await asyncio.sleep(2)
            self.state().write(self.options.state_dir)

    async def stop(self) -> None:
        self.status = "stopping"
        self.state().write(self.options.state_dir)
        # The last stage first, each stage's processes together: NATS outlives what uses it,
        # and twenty processes stopped one after another took ~12 s.
        for stage in reversed(self.stages):
            await asyncio.gather(*(process.stop() for process in stage))
        await self.supervisor.shutdown()
        if self.options.iptables:
            delete_namespaces(self.options)
        (self.options.state_dir / "mesh.json").unlink(missing_ok=True)


def banner(options: MeshOptions) -> str:
    ingress = f"http://{options.ingress_address}:8080"
    capture = ("each workload in its own network namespace, captured by iptables" if options.iptables
               else "apps reaching their sidecars as HTTP proxy")
    if options.app != "bookinfo":
        return f"Mizzen is up (no demo app). Apply config with: mizzenctl apply -f FILE\nState: {options.state_dir}"
    return f"""
Mizzen is up: Bookinfo with mutual TLS between sidecars, behind the ingress gateway
({capture}).

  open {ingress}/productpage          (or: curl -s {ingress}/productpage | grep -o 'reviews-v[0-9]')

Try Istio's Bookinfo tasks, with Istio's own files:
  mizzenctl apply -f samples/bookinfo/networking/destination-rule-all.yaml
  mizzenctl apply -f samples/bookinfo/networking/virtual-service-all-v1.yaml          # all traffic to v1
  mizzenctl apply -f samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml # jason sees v2
  mizzenctl apply -f samples/bookinfo/networking/virtual-service-reviews-50-v3.yaml   # 50/50 v1/v3

  mizzenctl proxy-status        mizzenctl get virtualservices        mizzenctl status

Live service graph: {options.telemetry_url}/graph   (mizzenctl dashboard)
Istio's metrics: {options.telemetry_url}/metrics   Traces (Zipkin API): {options.zipkin_url}/api/v2/traces

Logs: {options.state_dir / 'logs'}    Config galley watches: {options.config_dir}
"""


async def run_foreground(options: MeshOptions, identities: list[tuple[str, str, str]]) -> int:
    mesh = LocalMesh(options, identities)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fresh: asyncio.Task[None] | None = None
    starting = asyncio.create_task(mesh.start(lambda line: print(line, flush=True)), name="mesh-start")
    stopped = asyncio.create_task(stop.wait(), name="mesh-stop-signal")
    # A supervise task that failed (the supervisor then asks to stop) ends the mesh too.
    failed = asyncio.create_task(mesh.supervisor.stopped(), name="mesh-supervision-failed")
    try:
        done, _ = await asyncio.wait({starting, stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()
            print(banner(options), flush=True)
            fresh = asyncio.create_task(mesh.keep_state_fresh(), name="mesh-state")
            done, _ = await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        if mesh.supervisor.failure is not None:
            raise ProcessFailed(f"lost supervision of a child: {mesh.supervisor.failure}")
        print("stopping the mesh ...", flush=True)
        return 0
    except ProcessFailed as exc:
        print(f"mizzenctl up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for task in (fresh, starting, stopped, failed):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (fresh, starting, stopped, failed) if t is not None),
                             return_exceptions=True)
        await mesh.stop()
