"""The compose mesh from the host: `python -m tools.containers compose up | down | context`.

`up` (`make compose-demo`) starts docker-compose.yml as a compose project (default
`mizzen`), waits until it serves — every proxy of the mesh connected to pilot with the
current config ACKed, and Bookinfo's product page, reviews included, answering through
the ingress gateway — and records a mizzenctl context for it (`compose`, made current),
so `mizzenctl apply`, `get`, `proxy-status` and `proxy-config` reach it from any
directory.  `down` (`make compose-down`) removes the project's containers, network and
volumes and forgets the context; `context` records the context of a mesh started by hand
(`docker-compose -p mizzen up -d`).

Host ports are the compose file's defaults unless MIZZEN_INGRESS_PORT, MIZZEN_GALLEY_PORT,
MIZZEN_PILOT_PORT, MIZZEN_TELEMETRY_PORT or MIZZEN_ZIPKIN_PORT say otherwise; the images
are mizzen:latest and mizzen-bookinfo:latest unless MIZZEN_IMAGE or MIZZEN_BOOKINFO_IMAGE do.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx

from tools.containers.engine import ContainerError, Engine, run
from tools.containers.identities import mesh_proxies
from tools.mizzenctl import contexts

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEFAULT_PROJECT = "mizzen"
DEFAULT_CONTEXT = "compose"
GALLEY_TOKEN = "/var/run/mizzen/galley/token"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
READY_TIMEOUT_S = 240.0
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class HostPorts:
    """Where the mesh is published on 127.0.0.1 (the compose file's variables)."""

    ingress: int = field(default=8080, metadata={"env": "MIZZEN_INGRESS_PORT"})
    galley: int = field(default=15019, metadata={"env": "MIZZEN_GALLEY_PORT"})
    pilot: int = field(default=15014, metadata={"env": "MIZZEN_PILOT_PORT"})
    telemetry: int = field(default=42422, metadata={"env": "MIZZEN_TELEMETRY_PORT"})
    zipkin: int = field(default=9411, metadata={"env": "MIZZEN_ZIPKIN_PORT"})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> HostPorts:
        values: dict[str, Any] = {}
        for f in fields(cls):
            text = environ.get(f.metadata["env"])
            if text:
                if not text.isdigit():
                    raise ContainerError(f"{f.metadata['env']}={text!r} is not a port number")
                values[f.name] = int(text)
        return cls(**values)

    def env(self) -> dict[str, str]:
        return {f.metadata["env"]: str(getattr(self, f.name)) for f in fields(self)}

    def taken(self) -> list[str]:
        """`VARIABLE=port` for each port something on 127.0.0.1 already holds."""
        busy = []
        for f in fields(self):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", getattr(self, f.name)))
                except OSError:
                    busy.append(f"{f.metadata['env']}={getattr(self, f.name)}")
        return busy


def expected_proxies() -> list[str]:
    """`<pod>.<namespace>` of every proxy the mesh runs, as pilot's /debug/syncz names them."""
    return sorted(f"{name}.{namespace}" for name, namespace, _ in mesh_proxies())


def pending_proxies(syncz: Mapping[str, Any], expected: Sequence[str]) -> list[str]:
    """The expected proxies not yet serving pilot's current config: not connected, on an
    older version, or with a response not yet ACKed (each with why)."""
    version = syncz.get("version")
    rows = {row.get("name"): row for row in syncz.get("proxies", [])}
    pending = []
    for name in expected:
        row = rows.get(name)
        if row is None:
            pending.append(f"{name} (not connected)")
        elif version is None or row.get("version") != version:
            pending.append(f"{name} (at {row.get('version')}, pilot at {version})")
        elif any(state.get("awaiting_ack") for state in row.get("types", {}).values()):
            pending.append(f"{name} (awaiting ACK)")
    return pending


def bookinfo_served(status: int, html: str) -> bool:
    """The product page, with its details and a reviews version (so reviews answered too)."""
    return status == 200 and 'id="reviews-version"' in html and "Error fetching product" not in html


@dataclass(frozen=True)
class ComposeMesh:
    """One compose project of docker-compose.yml, driven with the compose CLI."""

    engine: Engine
    project: str = DEFAULT_PROJECT
    ports: HostPorts = field(default_factory=HostPorts)
    mizzen_image: str = "mizzen:latest"
    bookinfo_image: str = "mizzen-bookinfo:latest"
    file: Path = COMPOSE_FILE
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def from_env(cls, engine: Engine, project: str = DEFAULT_PROJECT,
                 environ: Mapping[str, str] = os.environ) -> ComposeMesh:
        return cls(engine, project, HostPorts.from_env(environ),
                   environ.get("MIZZEN_IMAGE") or "mizzen:latest",
                   environ.get("MIZZEN_BOOKINFO_IMAGE") or "mizzen-bookinfo:latest", base_env=dict(environ))

    # Every compose command sees the same variables: compose compares a service's
    # configuration, these included, and recreates what differs.
    def env(self) -> dict[str, str]:
        return {**self.base_env, **self.ports.env(), "MIZZEN_IMAGE": self.mizzen_image,
                "MIZZEN_BOOKINFO_IMAGE": self.bookinfo_image}

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        argv = [*self.engine.compose, "--project-name", self.project, "--file", str(self.file), *args]
        return run(argv, check=check, timeout=timeout, env=self.env()).stdout

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ingress}"

    @property
    def galley_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.galley}"

    @property
    def pilot_url(self) -> str:
        """pilot-debug: every pilot replica's /debug/* (tools/containers/pilot_front.py)."""
        return f"http://127.0.0.1:{self.ports.pilot}"

    def containers(self, service: str | None = None, *, running_only: bool = True) -> list[str]:
        """Ids of the project's containers (of one service), running ones unless told otherwise."""
        filters = ["--filter", f"label={PROJECT_LABEL}={self.project}"]
        if service is not None:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        return self.engine("ps", "--quiet", "--no-trunc", *([] if running_only else ["--all"]), *filters).stdout.split()

    def up(self, *, scale: Mapping[str, int] | None = None) -> None:
        """`compose up --detach`; refuses, saying which, when a host port or an image is missing."""
        if not self.containers():
            taken = self.ports.taken()
            if taken:
                raise ContainerError(f"127.0.0.1 ports already in use: {', '.join(taken)} (the local mesh, `make "
                                     "demo`, uses the same ones); stop what holds them, or set those variables to "
                                     "free ports")
        for image in (self.mizzen_image, self.bookinfo_image):
            if self.engine.image_id(image) is None:
                raise ContainerError(f"no image {image} here: build it with `make images`")
        scaling = [arg for service, count in (scale or {}).items() for arg in ("--scale", f"{service}={count}")]
        self.compose("up", "--detach", *scaling)

    def down(self) -> None:
        """Containers, network and volumes of the project, gone."""
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300)

    def syncz(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.pilot_url}/debug/syncz", timeout=5).json()
        return body

    def productpage(self, **headers: str) -> tuple[int, str]:
        response = httpx.get(f"{self.ingress_url}/productpage", headers=headers, timeout=30)
        return response.status_code, response.text

    def failed_one_shots(self) -> list[str]:
        """Containers that ran once and failed (identities, an istio-init): nothing will retry them."""
        listed = self.engine("ps", "--all", "--filter", f"label={PROJECT_LABEL}={self.project}", "--filter",
                             "status=exited", "--format", f'{{{{.Label "{SERVICE_LABEL}"}}}} {{{{.Status}}}}').stdout
        failed = []
        for line in listed.splitlines():
            service, _, status = line.partition(" ")
            if (service == "identities" or service.endswith("-init")) and not status.startswith("Exited (0)"):
                failed.append(f"{service}: {status}")
        return failed

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Until every proxy serves pilot's current config and Bookinfo answers through the
        ingress; the seconds it took.  On timeout, what was still missing and the logs of
        the containers that are not well."""
        started = time.monotonic()
        expected = expected_proxies()
        missing = "nothing checked yet"
        while time.monotonic() - started < timeout:
            failed = self.failed_one_shots()
            if failed:
                raise ContainerError(f"{'; '.join(failed)}\n{self.describe_trouble()}")
            try:
                pending = pending_proxies(self.syncz(), expected)
                if pending:
                    missing = f"proxies not synced: {', '.join(pending)}"
                else:
                    status, html = self.productpage()
                    if bookinfo_served(status, html):
                        return time.monotonic() - started
                    missing = f"Bookinfo through the ingress answered {status} without a complete page"
            except (httpx.HTTPError, ValueError) as exc:
                missing = f"{exc.__class__.__name__}: {exc}"
            time.sleep(POLL_INTERVAL_S)
        raise ContainerError(f"compose project {self.project} not ready after {timeout:.0f} s ({missing})\n"
                             f"{self.describe_trouble()}")

    def describe_trouble(self) -> str:
        """`compose ps`, and the last log lines of every container not running healthy."""
        lines = [self.compose("ps", check=False)]
        listed = self.engine("ps", "--all", "--filter", f"label={PROJECT_LABEL}={self.project}", "--format",
                             "{{.Names}}\t{{.Status}}").stdout
        for line in listed.splitlines():
            name, _, status = line.partition("\t")
            if "(healthy)" in status or "Exited (0)" in status or (status.startswith("Up") and "health" not in status):
                continue
            logs = self.engine("logs", "--tail", "15", name, check=False).stdout
            lines.append(f"--- {name} ({status}):\n{logs.rstrip()}")
        return "\n".join(lines)

    def galley_token(self) -> str:
        """galley's API token, which the identities container made in galley's volume."""
        running = self.containers("galley")
        if not running:
            raise ContainerError(f"galley of compose project {self.project} is not running")
        token = self.engine("exec", running[0], "cat", GALLEY_TOKEN).stdout.strip()
        if not token:
            raise ContainerError(f"galley's token file {GALLEY_TOKEN} is empty")
        return token


def record_context(mesh: ComposeMesh, name: str = DEFAULT_CONTEXT, environ: Mapping[str, str] = os.environ,
                   *, use: bool = True) -> Path:
    """A mizzenctl context for the mesh (galley, pilot-debug and galley's token, copied to
    `<mizzen config home>/tokens/<name>`, 0600); current when `use`.  The token file's path."""
    token = mesh.galley_token()
    tokens = contexts.config_home(environ) / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    token_file = tokens / name
    staging = tokens / f".{name}.tmp"
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    staging.replace(token_file)
    known = contexts.load(environ)
    known.contexts[name] = contexts.Context(name, galley=mesh.galley_url, pilot=mesh.pilot_url,
                                            token_file=str(token_file))
    if use or not known.current:
        known.current = name
    contexts.save(known, environ)
    return token_file


def forget_context(name: str = DEFAULT_CONTEXT, environ: Mapping[str, str] = os.environ) -> bool:
    """Drop the context and its token file; False when there was no such context."""
    known = contexts.load(environ)
    context = known.contexts.pop(name, None)
    if context is None:
        return False
    if known.current == name:
        known.current = ""
    contexts.save(known, environ)
    if context.token_file:
        Path(context.token_file).unlink(missing_ok=True)
    return True


def _scale(text: str) -> tuple[str, int]:
    service, _, count = text.partition("=")
    if not service or not count.isdigit():
        raise ContainerError(f"--scale {text!r} is not SERVICE=COUNT")
    return service, int(count)


def main(argv: Sequence[str], engine_factory: Callable[[], Engine], say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.containers compose",
                                     description="Run the compose mesh (docker-compose.yml) and point mizzenctl at it.")
    parser.add_argument("action", choices=("up", "down", "context"),
                        help="up: start, wait until ready, record the context; down: remove it all and forget the "
                             "context; context: record the context of a mesh already up")
    parser.add_argument("--project", default=DEFAULT_PROJECT, help=f"compose project name (default {DEFAULT_PROJECT})")
    parser.add_argument("--context", default=DEFAULT_CONTEXT,
                        help=f"mizzenctl context to record or forget (default {DEFAULT_CONTEXT})")
    parser.add_argument("--scale", action="append", default=[], metavar="SERVICE=COUNT",
                        help="with up: replicas of a service, e.g. pilot=2 (repeatable)")
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT_S, help="seconds up waits for readiness")
    args = parser.parse_args(argv)
    mesh = ComposeMesh.from_env(engine_factory(), args.project)
    if args.action == "down":
        mesh.down()
        forgot = forget_context(args.context)
        say(f"compose project {args.project} removed (containers, network, volumes)"
            + (f"; mizzenctl context {args.context!r} forgotten" if forgot else ""))
        return 0
    if args.action == "up":
        scale = dict(_scale(text) for text in args.scale)
        say(f"starting compose project {args.project} ({mesh.mizzen_image}, {mesh.bookinfo_image})")
        mesh.up(scale=scale)
        took = mesh.wait_ready(args.timeout)
        say(f"ready in {took:.0f} s: {len(expected_proxies())} proxies synced, Bookinfo answering")
    token_file = record_context(mesh, args.context)
    say(f"""
  Bookinfo     {mesh.ingress_url}/productpage
               curl -s {mesh.ingress_url}/productpage | grep -o 'reviews-version">v[0-9]'
  mizzenctl    context {args.context!r} is current (galley {mesh.galley_url}, pilot {mesh.pilot_url},
               token {token_file}): .venv/bin/mizzenctl proxy-status
  metrics      http://127.0.0.1:{mesh.ports.telemetry}/metrics   Zipkin http://127.0.0.1:{mesh.ports.zipkin}
  config       deploy/docker/compose/config/ (galley applies every file), or mizzenctl apply -f
  containers   docker-compose -p {args.project} ps        stop: make compose-down""")
    return 0
