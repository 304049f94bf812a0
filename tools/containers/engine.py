"""The container engine: Docker's CLI, and compose as `docker compose` or `docker-compose`.

Everything runs the CLI as a subprocess, as a user would; a failure becomes a
`ContainerError` carrying the command and what it printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

START_HINT = ("start the daemon as root (e.g. `dockerd > /var/log/dockerd.log 2>&1 &`); "
              "Debian's packages are docker.io and docker-compose")


class ContainerError(Exception):
    """Root of the errors of building images and running the compose mesh."""


class EngineUnavailable(ContainerError):
    """No Docker CLI, no daemon answering it, or no compose."""


class CommandFailed(ContainerError):
    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-30:])
        super().__init__(f"`{' '.join(argv)}` failed ({returncode}):\n{tail}")
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = 600,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, stdout and stderr together; `CommandFailed` on a non-zero exit when `check`."""
    try:
        result = subprocess.run(list(argv), input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout, check=False, env=dict(env) if env is not None else None)
    except subprocess.TimeoutExpired as exc:
        raise ContainerError(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from exc
    if check and result.returncode != 0:
        raise CommandFailed(argv, result.returncode, result.stdout)
    return result


@dataclass(frozen=True)
class Engine:
    docker: str
    # How compose is run: [docker, "compose"] (the plugin) or [docker-compose].
    compose: tuple[str, ...]

    def __call__(self, *args: str, check: bool = True, timeout: float = 600,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run([self.docker, *args], check=check, timeout=timeout, input=input)

    def image_id(self, ref: str) -> str | None:
        found = self("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return found.stdout.strip() if found.returncode == 0 else None


def find_engine(environ: Mapping[str, str] = os.environ) -> Engine:
    """The Docker CLI with a daemon answering it, and a compose; `EngineUnavailable` says what is missing."""
    docker = shutil.which("docker", path=environ.get("PATH"))
    if docker is None:
        raise EngineUnavailable(f"no `docker` command: install Docker (Debian: docker.io) and {START_HINT}")
    info = run([docker, "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    if info.returncode != 0:
        raise EngineUnavailable(f"the Docker daemon does not answer (`docker info`: {info.stdout.strip()}); "
                                f"{START_HINT}")
    return Engine(docker, compose_command(docker, environ))


def compose_command(docker: str, environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """`docker compose` when the plugin is there, else Debian's `docker-compose`."""
    if run([docker, "compose", "version"], check=False, timeout=30).returncode == 0:
        return (docker, "compose")
    legacy = shutil.which("docker-compose", path=environ.get("PATH"))
    if legacy is not None:
        return (legacy,)
    raise EngineUnavailable("neither `docker compose` nor `docker-compose` is installed (Debian: docker-compose)")
