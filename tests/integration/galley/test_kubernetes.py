"""Galley as a process, watching Istio CRDs in a (fake) Kubernetes API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kv import config_entries
from tests.harness.mesh import Mesh
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer() as api:
        yield api


def _vs(name: str, weight_a: int, weight_b: int) -> dict[str, object]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": weight_a},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": weight_b},
        ]}]},
    }


def test_crds_flow_to_mesh_config(mesh: Mesh, kube_api: FakeKubeApiServer, tmp_path: Path) -> None:
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    kube_api.create(_vs("reviews", 50, 50))
    galley = mesh.galley(None, "--kubeconfig", str(kubeconfig))
    key = "VirtualService.shop.reviews"
    entries = wait_until(lambda: config_entries(mesh.nats.url), what="the CRD in mesh-config")
    assert key in entries
    spec = json.loads(entries[key][0])["spec"]
    assert [r["weight"] for r in spec["http"][0]["route"]] == [50, 50]

    # An invalid object never reaches mesh-config, and galley names the field.
    kube_api.create(_vs("broken", 50, 40))
    wait_until(lambda: "spec.http[0].route" in galley.process.log(), what="galley to report the invalid CRD")
    assert "VirtualService.shop.broken" not in config_entries(mesh.nats.url)
