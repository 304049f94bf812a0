"""`mizzenctl analyze` against a real galley and pilot (live config, the registry's
workloads, files overlaid on both, files alone), and galley's apply answering with what
the same analyzers find, as warnings (body and `Warning` headers) that refuse nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.bus import MESH_WORKLOADS, Bus, BusSettings
from libs.config.workloads import WorkloadRegistration
from tests.harness.http import HTTP
from tests.harness.mesh import GalleyService, Mesh, PilotService
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

TOKEN = "s3cret"
# Bookinfo's reviews and ratings as the local mesh holds them: ServiceEntries selecting
# registered workloads, and the subsets of the workloads that run.
PLATFORM_CONFIG = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""
WORKLOADS = (
    WorkloadRegistration("reviews-v1", "default", "127.0.0.1", {"app": "reviews", "version": "v1"},
                         "bookinfo-reviews"),
    WorkloadRegistration("reviews-v2", "default", "127.0.0.2", {"app": "reviews", "version": "v2"},
                         "bookinfo-reviews"),
    WorkloadRegistration("ratings-v1", "default", "127.0.0.3", {"app": "ratings", "version": "v1"},
                         "bookinfo-ratings"),
)
BROKEN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: ratings2}}]}]
"""
FIXED = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  subsets: [{name: v1, labels: {version: v1}}, {name: v9, labels: {version: v9}}]
"""
HOST_NOT_FOUND = 'Error [IST0101] (VirtualService default/reviews) Referenced host not found: "ratings2"'
SUBSET_V9 = ("Error [IST0173] (DestinationRule default/ratings {origin}) The Subset v9 defined in the DestinationRule "
             "does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).")


@dataclass
class Env:
    nats_url: str
    galley: GalleyService
    pilot: PilotService

    def mizzenctl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        pilot = ["--pilot", self.pilot.monitoring] if args[0] == "analyze" else []
        return subprocess.run([sys.executable, "-m", "tools.mizzenctl", *args, "--galley", self.galley.api,
                               "--token", TOKEN, *pilot],
                              check=False, input=stdin, capture_output=True, text=True, timeout=60)


def register(nats_url: str) -> None:
    """The workloads, as agents would register them (a bucket without expiry: no agent refreshes)."""
    async def write() -> None:
        bus = await Bus.connect(BusSettings(url=nats_url), name="test-agents")
        try:
            bucket = await bus.kv(MESH_WORKLOADS)
            for workload in WORKLOADS:
                await bucket.put(workload.key, workload.to_json())
        finally:
            await bus.close()

    asyncio.run(write())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("analyze")
    (base / "logs").mkdir()
    group = ProcessGroup(base / "logs")
    try:
        nats = start_nats(group, base / "nats")
        register(nats.url)
        (base / "mesh").mkdir()
        mesh = Mesh(group, nats, base / "mesh")
        config = base / "config"
        config.mkdir()
        (config / "platform.yaml").write_text(PLATFORM_CONFIG)
        (base / "token").write_text(TOKEN)
        found = Env(nats.url, mesh.galley(config, "--api-token-file", str(base / "token")), mesh.pilot())

        def registry_in() -> bool:
            body = found.pilot.get("/debug/platformz").json()
            return {w["name"] for w in body["workloads"]} >= {w.name for w in WORKLOADS} and any(
                s["hostname"] == "reviews.default.svc.cluster.local" for s in body["services"])

        wait_until(registry_in, timeout=30, what="pilot to hold the workloads and services")
        yield found
    finally:
        group.stop_all()


@pytest.fixture
def broken_applied(env: Env) -> Iterator[subprocess.CompletedProcess[str]]:
    applied = env.mizzenctl("apply", "-f", "-", stdin=BROKEN)
    try:
        yield applied
    finally:
        env.mizzenctl("delete", "-f", "-", stdin=BROKEN)


def test_pilot_serves_its_registry_for_analysis(env: Env) -> None:
    body = env.pilot.get("/debug/platformz").json()
    reviews = next(s for s in body["services"] if s["hostname"] == "reviews.default.svc.cluster.local")
    assert reviews["source"] == "ServiceEntry default/reviews"
    assert sorted(reviews["endpoints"]["9080"]) == ["127.0.0.1:9080", "127.0.0.2:9080"]
    assert {(w["name"], w["serviceAccount"], w["source"]) for w in body["workloads"]} == {
        (w.name, w.service_account, "registry") for w in WORKLOADS}


def test_apply_answers_with_the_analyzers_warnings_and_stores_anyway(
        env: Env, broken_applied: subprocess.CompletedProcess[str]) -> None:
    assert broken_applied.returncode == 0, broken_applied.stderr
    assert broken_applied.stdout.strip() == "VirtualService default/reviews created"
    assert f"warning: {HOST_NOT_FOUND}" in broken_applied.stderr.splitlines()
    # A dry run says the same, in the body and as the API server's `Warning` headers.
    response = HTTP.post(f"{env.galley.api}/apis/v1/apply", params={"dryRun": "true"}, content=BROKEN,
                         headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/yaml"})
    assert response.status_code == 200
    assert response.json()["warnings"] == [HOST_NOT_FOUND]
    assert response.headers.get_list("warning") == ['299 - "' + HOST_NOT_FOUND.replace('"', '\\"') + '"']


def test_live_analysis_reports_the_broken_resource(env: Env, broken_applied: subprocess.CompletedProcess[str]) -> None:
    result = env.mizzenctl("analyze")
    assert result.returncode == 79, result.stderr
    assert result.stdout.splitlines() == [HOST_NOT_FOUND]
    # Another namespace holds nothing broken.
    clean = env.mizzenctl("analyze", "-n", "shop")
    assert clean.returncode == 0 and "No validation issues found when analyzing namespace: shop." in clean.stderr


def test_files_overlaid_on_the_live_mesh_replace_what_they_name(
        env: Env, broken_applied: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(FIXED)
    result = env.mizzenctl("analyze", "-f", str(fixed))
    # The file's reviews replaces the live, broken one; its ratings subset v9 selects none
    # of the registered workloads pilot knows; the live ServiceEntries define both hosts.
    assert result.stdout.splitlines() == [SUBSET_V9.format(origin=f"{fixed}[1]")], result.stderr
    assert result.returncode == 79


def test_files_alone_know_neither_the_live_config_nor_the_registry(env: Env, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(FIXED.split("---\n", maxsplit=1)[0])
    result = env.mizzenctl("analyze", "--use-mesh=false", "-o", "yaml", "-f", str(fixed))
    assert result.returncode == 79
    assert "Referenced host not found: \"reviews\"" in result.stdout
    assert "Referenced host+subset in destinationrule not found: \"reviews+v2\"" in result.stdout
