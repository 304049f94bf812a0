"""Citadel as a real process for tests, the agent flags that point an agent at it, and a
sidecar holding a citadel identity."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.citadel.cli import mint_bootstrap_token
from tests.harness.http import HTTP
from tests.harness.mesh import Mesh, PilotService, Proxy
from tests.harness.ports import free_port
from tests.harness.processes import Process, ProcessGroup
from tests.harness.waiting import wait_until


@dataclass
class Citadel:
    process: Process
    grpc_port: int
    monitoring_port: int
    state_dir: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def root_file(self) -> Path:
        return self.state_dir / "root-cert.pem"

    @property
    def root_pem(self) -> bytes:
        return self.root_file.read_bytes()

    def ready(self) -> bool:
        return HTTP.get(f"http://127.0.0.1:{self.monitoring_port}/readyz", timeout=1.0).status_code == 200

    def metric(self, name: str) -> float:
        """A sample from /metrics by its exact name (with labels, if any), 0 if absent."""
        text = HTTP.get(f"http://127.0.0.1:{self.monitoring_port}/metrics", timeout=5.0).text
        for line in text.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == name:
                return float(value)
        return 0.0

    def token(self, namespace: str = "default", service_account: str = "default", *, ttl_s: int = 3600,
              now: float | None = None) -> str:
        return mint_bootstrap_token(self.state_dir, namespace, service_account, ttl_s,
                                    now=time.time() if now is None else now)

    def token_file(self, path: Path, namespace: str = "default", service_account: str = "default") -> Path:
        path.write_text(self.token(namespace, service_account))
        path.chmod(0o600)
        return path


def start_citadel(group: ProcessGroup, nats_url: str, state_dir: Path, *extra: str, name: str = "citadel",
                  grpc_port: int | None = None, wait: bool = True) -> Citadel:
    grpc_port = grpc_port or free_port()
    monitoring_port = free_port()
    process = group.python(name, "services.citadel", "--nats-url", nats_url, "--log-level", "debug", "--log-json",
                           "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc_port),
                           "--monitoring-address", "127.0.0.1", "--monitoring-port", str(monitoring_port),
                           "--state-dir", str(state_dir), *extra)
    citadel = Citadel(process, grpc_port, monitoring_port, state_dir)
    if wait:
        wait_until(citadel.ready, timeout=30, what=f"{name} /readyz")
    return citadel


def identity_args(citadel: Citadel, token_file: Path, *, sds_socket: Path, nats_url: str = "",
                  override: Path | None = None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Agent flags turning identity on against `citadel`."""
    args = ["--identity-enabled", "--citadel-address", citadel.address, "--citadel-root-cert", str(citadel.root_file),
            "--citadel-token-file", str(token_file), "--sds-socket", str(sds_socket)]
    if nats_url:
        args += ["--trust-nats-url", nats_url]
    if override is not None:
        args += ["--bootstrap-override", str(override)]
    return (*args, *extra)


def identity_sidecar(mesh: Mesh, pilot: PilotService, citadel: Citadel, base: Path, name: str, ip: str,
                     account: str, **kwargs: Any) -> Proxy:
    """A sidecar on `ip` (apps reach it as an HTTP proxy) holding citadel's identity for
    service account `account` in `default`; its token and SDS socket under `base`."""
    token = citadel.token_file(base / f"{name}.token", "default", account)
    return mesh.proxy(pilot, name=name, bind_address=ip, interception="NONE", service_account=account,
                      extra=identity_args(citadel, token, sds_socket=base / f"{name}.sock"), **kwargs)
