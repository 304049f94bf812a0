"""The compose mesh as a user drives it: `mizzenctl` on the host through the context that
`python -m tools.containers compose` records, Bookinfo through the published ingress.

`BookinfoOnCompose` is `tests.e2e.bookinfo_tasks.BookinfoMesh`: `apply()` runs `mizzenctl
apply` and returns once pilot serves the applied resources (its /debug/configz holds them
as written) and every proxy of the mesh ACKed that version (its /debug/syncz), both read
through the mesh's pilot-debug port, as `mizzenctl proxy-status` reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from libs.config import parse_text
from tests.harness.http import HTTP
from tests.harness.waiting import wait_until
from tools.containers.compose import ComposeMesh, expected_proxies, pending_proxies

Key = tuple[str, str, str]
# The gateway's VirtualService comes from the mounted config folder, not from a task.
CONFIG_FOLDER_SERVICES = {"bookinfo"}
# mizzenctl finds the mesh through the context alone: no endpoint from the environment.
ENDPOINT_VARIABLES = ("MIZZEN_STATE_DIR", "MIZZEN_GALLEY_URL", "MIZZEN_PILOT_URL", "MIZZEN_TOKEN")


def key(resource: dict[str, Any]) -> Key:
    return resource["kind"], resource["metadata"]["namespace"], resource["metadata"]["name"]


def resources_in(files: Iterable[Path], namespace: str = "default") -> list[dict[str, Any]]:
    """The resources of Istio config files, as galley stores and pilot serves them; of
    several with one name, the last (applied last, it is the one that stays)."""
    found: dict[Key, dict[str, Any]] = {}
    for path in files:
        parsed = parse_text(path.read_text(), str(path), default_namespace=namespace)
        assert parsed.ok, parsed.errors()
        for _, resource in parsed.resources:
            body = resource.to_dict()
            found[key(body)] = body
    return list(found.values())


@dataclass
class BookinfoOnCompose:
    mesh: ComposeMesh
    # mizzenctl's working directory and config home (its contexts): the test's own.
    workdir: Path

    @property
    def config_home(self) -> Path:
        return self.workdir / "mizzen-config"

    @property
    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARIABLES}
        return {**env, "MIZZEN_CONFIG_HOME": str(self.config_home)}

    @property
    def ingress_url(self) -> str:
        return self.mesh.ingress_url

    def mizzenctl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args], input=stdin, capture_output=True,
                              text=True, timeout=120, cwd=self.workdir, env=self.environ, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"mizzenctl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n"
                                 f"{done.stderr}")
        return done

    def apply(self, *files: Path) -> None:
        self.mizzenctl("apply", *[arg for f in files for arg in ("-f", str(f))])
        self.sync(present=resources_in(files))

    def configz(self) -> dict[str, Any]:
        body: dict[str, Any] = HTTP.get(f"{self.mesh.pilot_url}/debug/configz", timeout=5).json()
        return body

    def sync(self, present: Sequence[dict[str, Any]] = (), absent: Sequence[Key] = (), timeout: float = 60) -> None:
        """Until pilot serves `present` as written and nothing of `absent`, and every proxy
        of the mesh ACKed the version that does."""
        expected = expected_proxies()

        def converged() -> bool:
            configz = self.configz()
            served = {key(resource): resource for resource in configz["resources"]}
            if any(served.get(key(r), {}).get("spec") != r["spec"] for r in present):
                return False
            if any(k in served for k in absent):
                return False
            syncz = self.mesh.syncz()
            return syncz.get("version") == configz["version"] and not pending_proxies(syncz, expected)

        wait_until(converged, timeout=timeout, interval=0.1,
                   what=f"pilot to serve {len(present)} applied and {len(absent)} deleted resources to every proxy")

    def synced(self, timeout: float = 60) -> dict[str, Any]:
        """Until every proxy is connected and ACKed pilot's current version; the syncz."""
        expected = expected_proxies()

        def all_synced() -> dict[str, Any] | None:
            syncz = self.mesh.syncz()
            return None if pending_proxies(syncz, expected) else syncz

        return wait_until(all_synced, timeout=timeout, interval=0.1, what="every proxy to sync with pilot")

    def reset(self) -> None:
        """Back to Bookinfo with its subsets and no task VirtualService."""
        listed = json.loads(self.mizzenctl("get", "virtualservices", "-A", "-o", "json").stdout)
        tasks = [r for r in listed if r["metadata"]["name"] not in CONFIG_FOLDER_SERVICES]
        if tasks:
            self.mizzenctl("delete", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": tasks}))
            self.sync(absent=[key(r) for r in tasks])


@dataclass
class Traffic:
    """The product page requested through the ingress, one request after another in a
    thread, until the block ends; every failure kept (status, or the error)."""

    url: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(f"{self.url}/productpage")
                    if response.status_code == 200 and 'id="reviews-version"' in response.text:
                        self.ok += 1
                    else:
                        self.failures.append(f"{response.status_code}: {response.text[:200]!r}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{exc.__class__.__name__}: {exc}")

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def more(self, count: int, timeout: float = 60) -> None:
        """Until `count` more requests succeeded."""
        target = self.ok + count
        wait_until(lambda: self.ok >= target, timeout=timeout, what=f"{count} more successful requests")
