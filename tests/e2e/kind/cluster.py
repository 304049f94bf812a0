"""A kind cluster running Mizzen and Bookinfo, driven with the real `kind`, `docker` and
`kubectl`, as a reader of the README would.

`KindCluster.require()` says why the suite cannot run (no kind, no Docker engine, no node
image and no registry to pull it from) before anything is created.  The cluster is the
suite's own (a random name, removed afterwards), its ingress on a free port of 127.0.0.1.
`BookinfoOnKind` is `tests.e2e.bookinfo_tasks.BookinfoMesh`: `apply()` returns once pilot
reports that every proxy ACKed the config that apply produced.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.harness.http import HTTP
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
OVERLAY = REPO / "deploy" / "kubernetes" / "overlays" / "kind"
BOOKINFO = REPO / "samples" / "bookinfo" / "platform" / "kube" / "bookinfo.yaml"
NETWORKING = REPO / "samples" / "bookinfo" / "networking"
IMAGES = ("mizzen:latest", "mizzen-bookinfo:latest")
# kind's node image; override with MIZZEN_KIND_NODE_IMAGE (e.g. one loaded with `docker load`).
NODE_IMAGE = os.environ.get("MIZZEN_KIND_NODE_IMAGE", "kindest/node:v1.30.0")
NAMESPACE = "bookinfo"
WEBHOOK_CONFIGURATIONS = ("mutatingwebhookconfiguration/istio-sidecar-injector",
                          "validatingwebhookconfiguration/istio-galley")
ROLLOUT_TIMEOUT = "300s"
COMMAND_TIMEOUT_S = 900


class Unavailable(Exception):
    """What this machine lacks for a kind cluster (the suite skips with it)."""


def run(argv: list[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = COMMAND_TIMEOUT_S, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@dataclass
class KindCluster:
    workdir: Path
    kind: str
    kubectl: str
    name: str = field(default_factory=lambda: f"mizzen-e2e-{secrets.token_hex(3)}")
    ingress_port: int = field(default_factory=free_port)

    @classmethod
    def require(cls, workdir: Path, kubectl: str) -> KindCluster:
        """A cluster to create, or Unavailable naming what is missing."""
        kind = shutil.which("kind")
        if kind is None:
            raise Unavailable("kind is not installed (https://kind.sigs.k8s.io; no Debian package)")
        if shutil.which("docker") is None or run(["docker", "info"], check=False, timeout=60).returncode != 0:
            raise Unavailable("no Docker engine answers `docker info` (kind runs its nodes as containers)")
        if run(["docker", "image", "inspect", NODE_IMAGE], check=False, timeout=60).returncode != 0:
            pulled = run(["docker", "pull", NODE_IMAGE], check=False, timeout=300)
            if pulled.returncode != 0:
                why = pulled.stderr.strip().splitlines()[-1] if pulled.stderr.strip() else "no registry answered"
                raise Unavailable(f"kind's node image {NODE_IMAGE} is not here and cannot be pulled ({why})")
        return cls(workdir, kind, kubectl)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir), "KUBECONFIG": str(self.kubeconfig)}

    def kubectl_run(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run([self.kubectl, *args], env=self.env, check=check, stdin=stdin)

    def create(self) -> None:
        """The cluster, with the ingress node port mapped to a free port of this machine."""
        config = yaml.safe_load((OVERLAY / "kind-cluster.yaml").read_text())
        mappings = config["nodes"][0]["extraPortMappings"]
        http = next(m for m in mappings if m["containerPort"] == 30080)
        http["hostPort"] = self.ingress_port
        config["nodes"][0]["extraPortMappings"] = [http]
        path = self.workdir / "kind-cluster.yaml"
        path.write_text(yaml.safe_dump(config))
        run([self.kind, "create", "cluster", "--name", self.name, "--image", NODE_IMAGE, "--config", str(path),
             "--kubeconfig", str(self.kubeconfig), "--wait", "120s"])

    def delete(self) -> None:
        run([self.kind, "delete", "cluster", "--name", self.name], check=False)

    def load_images(self) -> None:
        """Mizzen's images into every node, built first (`make images`) if this machine has none."""
        if any(run(["docker", "image", "inspect", image], check=False, timeout=60).returncode for image in IMAGES):
            run([sys.executable, "-m", "tools.containers", "images", "--base", os.environ.get("IMAGE_BASE", "auto")])
        run([self.kind, "load", "docker-image", *IMAGES, "--name", self.name])

    def install_mizzen(self) -> None:
        self.kubectl_run("apply", "--server-side", "-k", str(OVERLAY))
        self.kubectl_run("-n", "istio-system", "rollout", "status", "statefulset/nats", f"--timeout={ROLLOUT_TIMEOUT}")
        deployments = self.kubectl_run("-n", "istio-system", "get", "deployments", "-o", "name").stdout.split()
        for deployment in deployments:
            self.kubectl_run("-n", "istio-system", "rollout", "status", deployment, f"--timeout={ROLLOUT_TIMEOUT}")
        # The API server calls the injector (pods) and galley (Istio config) only once citadel
        # has set their webhooks' caBundle to its root.
        for configuration in WEBHOOK_CONFIGURATIONS:
            wait_until(functools.partial(self.ca_bundles_set, configuration), timeout=120,
                       what=f"citadel to set the caBundle of {configuration}")

    def ca_bundles_set(self, configuration: str) -> bool:
        """Every webhook of the admission webhook configuration has a caBundle."""
        document = yaml.safe_load(self.kubectl_run("get", configuration, "-o", "yaml").stdout)
        return all(webhook["clientConfig"].get("caBundle") for webhook in document["webhooks"])

    def install_bookinfo(self) -> None:
        """Bookinfo in a namespace opted into injection, its gateway and its subsets."""
        self.kubectl_run("create", "namespace", NAMESPACE)
        self.kubectl_run("label", "namespace", NAMESPACE, "istio-injection=enabled")
        self.kubectl_run("-n", NAMESPACE, "apply", "-f", str(BOOKINFO))
        for deployment in self.kubectl_run("-n", NAMESPACE, "get", "deployments", "-o", "name").stdout.split():
            self.kubectl_run("-n", NAMESPACE, "rollout", "status", deployment, f"--timeout={ROLLOUT_TIMEOUT}")
        self.kubectl_run("-n", NAMESPACE, "apply", "-f", str(NETWORKING / "bookinfo-gateway.yaml"),
                         "-f", str(NETWORKING / "destination-rule-all.yaml"))

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = yaml.safe_load(
            self.kubectl_run("-n", namespace, "get", "pods", "-o", "yaml").stdout)["items"]
        return items


@dataclass
class BookinfoOnKind:
    """Bookinfo on the cluster, as `tests.e2e.bookinfo_tasks` drives a mesh."""

    cluster: KindCluster
    pilot_url: str

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.cluster.ingress_port}"

    def syncz(self) -> dict[str, Any]:
        body: dict[str, Any] = HTTP.get(f"{self.pilot_url}/debug/syncz", timeout=5).json()
        return body

    def apply(self, *files: Path) -> None:
        before = self.syncz().get("version")
        args = [arg for f in files for arg in ("-f", str(f))]
        lines = self.cluster.kubectl_run("-n", NAMESPACE, "apply", *args).stdout.splitlines()
        self.sync(before if any(not line.endswith(" unchanged") for line in lines) else None)

    def sync(self, before: str | None, timeout: float = 60) -> None:
        """Until pilot serves a version other than `before` (None: any) and every proxy ACKed it."""

        def converged() -> bool:
            syncz = self.syncz()
            version = syncz.get("version")
            if version is None or version == before:
                return False
            return bool(syncz["proxies"]) and all(
                p["version"] == version and not any(t["awaiting_ack"] for t in p["types"].values())
                for p in syncz["proxies"])

        wait_until(converged, timeout=timeout, what="every proxy to ACK the applied config")

    def reset(self) -> None:
        """Back to Bookinfo with its gateway and subsets: every task VirtualService deleted."""
        names = self.cluster.kubectl_run("-n", NAMESPACE, "get", "virtualservices", "-o", "name").stdout.split()
        task_services = [n for n in names if n.rpartition("/")[2] != "bookinfo"]
        if task_services:
            before = self.syncz().get("version")
            self.cluster.kubectl_run("-n", NAMESPACE, "delete", *task_services)
            self.sync(before)


@contextlib.contextmanager
def port_forward(cluster: KindCluster, target: str, port: int, namespace: str = "istio-system") -> Any:
    """`kubectl port-forward` to `target`'s `port` on a free local port; yields its URL."""
    local = free_port()
    process = subprocess.Popen([cluster.kubectl, "-n", namespace, "port-forward", target, f"{local}:{port}"],
                               env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{local}"
    try:
        wait_until(lambda: HTTP.get(f"{url}/healthz", timeout=2).status_code == 200, timeout=60,
                   what=f"kubectl port-forward to {target}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
