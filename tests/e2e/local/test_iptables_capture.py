"""The local mesh with Istio's iptables capture: every workload in its own network
namespace, apps calling services by name, the kubelet's probes answered through the agent
under STRICT mTLS, and nothing left behind by `down`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.http import HTTP
from tests.harness.local_mesh import LocalMesh, reviews_version
from tests.harness.waiting import wait_until
from tools.localmesh.netns import available

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "bookinfo" / "networking"
SUBNET = 76


@pytest.fixture(scope="module")
def captured() -> Iterator[LocalMesh]:
    missing = available()
    if missing:
        message = f"--capture iptables {missing}: network namespaces and iptables are needed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (.ci/run installs iptables as root)")
        pytest.skip(message)
    # Agents run as the proxy user, who must walk to their files: not under pytest's 0700 tmp.
    state = Path(tempfile.mkdtemp(prefix="mizzen-iptables-"))
    mesh = LocalMesh(state, SUBNET)
    started = mesh.up("--capture", "iptables")
    try:
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}"
        yield mesh
    finally:
        mesh.down()
        shutil.rmtree(state, ignore_errors=True)


def namespaces() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(f"mz{SUBNET}-")]


def test_bookinfo_under_iptables_capture(captured: LocalMesh) -> None:
    assert len(namespaces()) == 6
    status, html = captured.productpage()
    assert status == 200 and "ISBN-10" in html and reviews_version(html)
    captured.apply(SAMPLES / "destination-rule-all.yaml", SAMPLES / "virtual-service-reviews-test-v2.yaml")
    assert reviews_version(captured.productpage(**{"end-user": "jason"})[1]) == "v2"
    assert reviews_version(captured.productpage()[1]) == "v1"
    # The app resolved `details` by name and connected to its virtual IP; the capture rules
    # took the connection into productpage's sidecar, which counted it.
    stats = HTTP.get(f"http://10.222.{SUBNET}.11:15090/stats/prometheus", timeout=5).text
    # Envoy's Prometheus names cut `.default.svc.cluster.local` out of the cluster name into the metric name.
    counts = [float(line.rsplit(" ", 1)[1]) for line in stats.splitlines()
              if "upstream_rq_total{" in line and 'envoy_cluster_name="outbound|9080||details"' in line]
    assert counts and counts[0] >= 1, "productpage's calls to details did not pass its sidecar"


STRICT = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"""
DETAILS = f"10.222.{SUBNET}.12"
# What the kubelet sends: plaintext, from outside the pod's network namespace.
KUBE_PROBE = {"User-Agent": "kube-probe/1.30"}


@contextlib.contextmanager
def stopped(mesh: LocalMesh, process: str) -> Iterator[None]:
    """`process` (and its process group) stopped with SIGSTOP: it holds its port and never
    answers, like a hung app; and the mesh does not restart it, as it would a dead one."""
    [pid] = [p.pid for p in mesh.state().processes if p.name == process and p.pid]
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def test_app_probes_through_the_agent_pass_a_strict_sidecar(captured: LocalMesh, tmp_path: Path) -> None:
    app = f"http://{DETAILS}:9080/health"
    ready, live = (f"http://{DETAILS}:15020/app-health/details/{kind}" for kind in ("readyz", "livez"))
    assert HTTP.get(app, headers=KUBE_PROBE, timeout=5).status_code == 200, "PERMISSIVE: plaintext accepted"
    policy = tmp_path / "strict.yaml"
    policy.write_text(STRICT)
    captured.apply(policy)
    try:
        # The kubelet's own probe would fail: the sidecar captures it and wants mTLS...
        with pytest.raises(httpx.HTTPError):
            HTTP.get(app, headers=KUBE_PROBE, timeout=5)
        # ...while the rewritten probe, on the agent's port, is answered by probing the app.
        answer = HTTP.get(ready, headers=KUBE_PROBE, timeout=5)
        assert (answer.status_code, answer.json()) == (200, {"status": "Details is healthy"})
        assert HTTP.get(live, headers=KUBE_PROBE, timeout=5).status_code == 200
        assert HTTP.get(f"http://{DETAILS}:15020/app-health/reviews/readyz", timeout=5).status_code == 404
        with stopped(captured, "details-v1-app"):
            hung = HTTP.get(ready, headers=KUBE_PROBE, timeout=10)
            assert hung.status_code == 500
            assert hung.text == "app probe failed: no answer within 1s\n"
            # The liveness probe is the injector's TCP rewrite: it only connects, so a hung app
            # still holding its port passes it, as it would pass the kubelet's own TCP probe.
            assert HTTP.get(live, headers=KUBE_PROBE, timeout=10).status_code == 200
        wait_until(lambda: HTTP.get(ready, headers=KUBE_PROBE, timeout=5).status_code == 200, timeout=10,
                   what="the readiness probe to pass again once details runs")
    finally:
        captured.delete(policy)


def test_down_removes_the_namespaces(captured: LocalMesh) -> None:
    assert namespaces()
    captured.down()
    assert namespaces() == []
    assert subprocess.run(["ip", "link", "show", f"mzbr{SUBNET}"], capture_output=True, check=False).returncode != 0
