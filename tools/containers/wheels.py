"""The wheels of the image's virtualenv, fetched by the host's pip for the image's Python.

`pip download --python-version` picks wheels for another interpreter, but evaluates
dependency markers with the Python running pip: redis needs async-timeout on Python
older than 3.11.3 (Debian bookworm's 3.11.2), which a newer host Python never asks for.
So after pip, the closure is checked against the base image's own marker environment,
and what it still lacks is fetched, until nothing is missing.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from tools.containers.engine import ContainerError, Engine, run

# Printed by the base image's python3: packaging's marker environment, from the stdlib only.
_ENVIRONMENT = """\
import json, os, platform, sys
info = sys.implementation.version
version = f"{info.major}.{info.minor}.{info.micro}"
if info.releaselevel != "final":
    version += info.releaselevel[0] + str(info.serial)
print(json.dumps({
    "implementation_name": sys.implementation.name, "implementation_version": version,
    "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(), "platform_python_implementation":
    platform.python_implementation(), "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform}))
"""
MAX_ROUNDS = 5


def base_environment(engine: Engine, base_ref: str) -> dict[str, str]:
    """The marker environment of the base image's python3 (run without a network)."""
    found = engine("run", "--rm", "--network", "none", "--entrypoint", "python3", base_ref, "-c", _ENVIRONMENT,
                   check=False, timeout=120)
    try:
        environment: dict[str, str] = json.loads(found.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ContainerError(f"{base_ref} has no working python3: {found.stdout.strip()}") from exc
    return environment


def requires(wheel: Path) -> list[str]:
    """A wheel's Requires-Dist lines, markers included."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist()
                        if name.endswith(".dist-info/METADATA") and name.count("/") == 1)
        text = archive.read(metadata).decode()
    headers = text.split("\n\n", 1)[0]
    return [line.partition(":")[2].strip() for line in headers.splitlines() if line.startswith("Requires-Dist:")]


def missing(wheels: Path, root: str, environment: dict[str, str]) -> list[Requirement]:
    """Requirements of `root`'s closure (under `environment`) that no wheel in `wheels` provides."""
    present: dict[str, Path] = {canonicalize_name(parse_wheel_filename(p.name)[0]): p for p in wheels.glob("*.whl")}
    wanted: dict[str, set[str]] = {canonicalize_name(root): set()}
    done: dict[str, frozenset[str]] = {}
    lacking: dict[str, Requirement] = {}
    while pending := [name for name, extras in wanted.items() if done.get(name) != frozenset(extras)]:
        for name in pending:
            extras = frozenset(wanted[name])
            done[name] = extras
            if name not in present:
                continue
            for line in requires(present[name]):
                requirement = Requirement(line)
                marker = requirement.marker
                contexts = [{**environment, "extra": extra} for extra in (extras or {""})]
                if marker is not None and not any(marker.evaluate(context) for context in contexts):
                    continue
                dependency = canonicalize_name(requirement.name)
                wanted.setdefault(dependency, set()).update(requirement.extras)
                if dependency not in present:
                    lacking.setdefault(dependency, requirement)
    return list(lacking.values())


def complete(wheels: Path, root: str, environment: dict[str, str],
             download: Callable[[Sequence[str]], None]) -> None:
    """Fetch what `root`'s closure still lacks for `environment`, round after round."""
    for _ in range(MAX_ROUNDS):
        lacking = missing(wheels, root, environment)
        if not lacking:
            return
        download([f"{r.name}{'[' + ','.join(sorted(r.extras)) + ']' if r.extras else ''}{r.specifier}"
                  for r in lacking])
    raise ContainerError(f"wheels for {root} still incomplete after {MAX_ROUNDS} rounds: "
                         f"{', '.join(str(r) for r in missing(wheels, root, environment))}")


def pip_download(python: str, wheels: Path, constraints: Path, python_version: str, platforms: Sequence[str],
                 abi: str) -> Callable[[Sequence[str]], None]:
    """A downloader of binary wheels for the image's interpreter into `wheels`."""
    def download(requirements: Sequence[str]) -> None:
        run([python, "-m", "pip", "--disable-pip-version-check", "download", "--quiet", "--dest", str(wheels),
             "--constraint", str(constraints), "--only-binary=:all:", "--python-version", python_version,
             "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none", *platforms, *requirements],
            timeout=900)

    return download
