"""The local mesh with Istio's iptables capture: every workload in its own network
namespace, apps calling services by name, and nothing left behind by `down`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.local_mesh import LocalMesh, reviews_version
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
    stats = httpx.get(f"http://10.222.{SUBNET}.11:15090/stats/prometheus", timeout=5).text
    # Envoy's Prometheus names cut `.default.svc.cluster.local` out of the cluster name into the metric name.
    counts = [float(line.rsplit(" ", 1)[1]) for line in stats.splitlines()
              if "upstream_rq_total{" in line and 'envoy_cluster_name="outbound|9080||details"' in line]
    assert counts and counts[0] >= 1, "productpage's calls to details did not pass its sidecar"


def test_down_removes_the_namespaces(captured: LocalMesh) -> None:
    assert namespaces()
    captured.down()
    assert namespaces() == []
    assert subprocess.run(["ip", "link", "show", f"mzbr{SUBNET}"], capture_output=True, check=False).returncode != 0
