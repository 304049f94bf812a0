"""The local mesh as users run it: `mizzenctl up -d`, `apply`, `down`, driven as commands."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.harness.http import HTTP
from tests.harness.kv import config_revision
from tests.harness.waiting import wait_until
from tools.localmesh.state import MeshState


@dataclass
class LocalMesh:
    state_dir: Path
    subnet: int

    @property
    def ingress(self) -> str:
        return f"http://127.{self.subnet}.1.1:8080"

    @property
    def ingress_url(self) -> str:
        """The ingress as `tests/e2e/bookinfo_tasks.BookinfoMesh` names it."""
        return self.ingress

    def address_of(self, workload: str) -> str:
        order = ["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"]
        return f"127.{self.subnet}.10.{order.index(workload) + 1}"

    def mizzenctl(self, *args: str, stdin: str | None = None, check: bool = True,
                  timeout: float = 240) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args, "--state-dir", str(self.state_dir)],
                                input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"mizzenctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tools.mizzenctl", "up", "-d", "--state-dir", str(self.state_dir),
                               "--subnet", str(self.subnet), "--ingress-address", f"127.{self.subnet}.1.1", *extra],
                              capture_output=True, text=True, timeout=300, check=False)

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.mizzenctl("down", check=False)

    def state(self) -> MeshState:
        state = MeshState.read(self.state_dir)
        assert state is not None, "the mesh is not running"
        return state

    def apply(self, *files: Path) -> None:
        args = [arg for f in files for arg in ("-f", str(f))]
        self.mizzenctl("apply", *args)
        self.sync()

    def delete(self, *files: Path) -> None:
        args = [arg for f in files for arg in ("-f", str(f))]
        self.mizzenctl("delete", *args, check=False)
        self.sync()

    def delete_all(self, kinds: Iterable[str]) -> None:
        """Delete every resource of `kinds`, in every namespace, that the API may delete, with
        one `mizzenctl delete`: the mesh's own platform resources (Bookinfo's ServiceEntries,
        its ingress route) come from files and stay, and their "not found" is expected.  The
        resources are listed through galley's API here: a `mizzenctl get` per kind cost a
        Python start each, ~20 s for the kinds a test may leave behind."""
        state = self.state()
        token = (self.state_dir / "galley-token").read_text().strip()
        items: list[dict[str, object]] = []
        with httpx.Client(base_url=state.galley, headers={"authorization": f"Bearer {token}"}, timeout=30) as api:
            for kind in kinds:
                response = api.get("/apis/v1/resources", params={"kind": kind})
                response.raise_for_status()
                items.extend(response.json()["items"])
        if items:
            self.mizzenctl("delete", "-f", "-", stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                                      "items": items}), check=False)

    def sync(self, timeout: float = 30) -> None:
        """Until pilot serves the latest mesh-config revision and every proxy ACKed it."""
        state = self.state()
        revision = config_revision(state.nats)

        def converged() -> bool:
            syncz = HTTP.get(f"{state.pilot}/debug/syncz", timeout=3).json()
            version = syncz.get("version") or "0"
            if int(version.split(".")[0]) < revision:
                return False
            proxies = {p["proxy"].split("~")[2]: p for p in syncz["proxies"]}
            return all(name in proxies and proxies[name]["version"] == version
                       and not any(t["awaiting_ack"] for t in proxies[name]["types"].values())
                       for name in state.proxies)

        wait_until(converged, timeout=timeout, what=f"every proxy to ACK revision {revision}")

        def policy_current() -> bool:
            metrics = HTTP.get(f"{state.policy}/metrics", timeout=3).text
            found = re.search(r"^policy_config_revision (\S+)$", metrics, re.MULTILINE)
            return found is not None and float(found.group(1)) >= revision

        wait_until(policy_current, timeout=timeout, what=f"the policy service to run revision {revision}")

    def drained(self) -> None:
        """Until no proxy serves a connection under a replaced listener (drain time 1s): a
        config change that added or removed a filter then holds for every request."""
        admins = [f"http://{self.address_of(name)}:15000" for name in
                  ("productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1")]
        admins += [f"http://127.{self.subnet}.1.1:15000", f"http://127.{self.subnet}.2.2:15000"]

        def draining(admin: str) -> int:
            stats = HTTP.get(f"{admin}/stats", params={"filter": "total_(listeners|filter_chains)_draining$"},
                             timeout=3).text
            return sum(int(line.rpartition(" ")[2]) for line in stats.splitlines() if line.strip())

        wait_until(lambda: all(draining(admin) == 0 for admin in admins), timeout=15,
                   what="replaced listeners to drain")

    def productpage(self, **headers: str) -> tuple[int, str]:
        response = HTTP.get(f"{self.ingress}/productpage", headers=headers, timeout=30)
        return response.status_code, response.text


def reviews_version(html: str) -> str | None:
    found = re.search(r'id="reviews-version">(v\d)<', html)
    return found.group(1) if found else None


def reviews_route(version: str, directory: Path) -> Path:
    """A file with a VirtualService sending every request for reviews to subset `version`
    (Bookinfo's DestinationRule defines the subsets)."""
    path = directory / f"reviews-{version}.yaml"
    path.write_text(f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: {version}}}}}]}}]
""")
    return path
