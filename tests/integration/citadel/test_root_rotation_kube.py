"""Citadel's root rotation on Kubernetes, as a real process against the fake API server: the
phases kept in `istio-ca-secret` (a restarted citadel carries on with the same new root),
and every step's bundle written into the `istio-ca-root-cert` ConfigMaps and the injector
webhook's caBundle, which is what pods without NATS learn the new root from."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.pki import fingerprint, load_certs
from tests.harness.citadel import Citadel, start_citadel
from tests.harness.http import HTTP
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import cluster_types
from tests.harness.nats import NatsServer
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

NAMESPACE = "istio-system"
WANTED = {"istio-system", "default", "shop"}


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer(cluster_types()) as api:
        for name in (*WANTED, "kube-system"):
            api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        api.create({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "istio-sidecar-injector"},
                    "webhooks": [{"name": "sidecar-injector.istio.io", "sideEffects": "None",
                                  "admissionReviewVersions": ["v1"],
                                  "clientConfig": {"service": {"name": "istiod", "namespace": NAMESPACE}}}]})
        yield api


def _start(processes: ProcessGroup, nats: NatsServer, tmp_path: Path, kubeconfig: Path, min_phase_s: str,
           name: str) -> Citadel:
    return start_citadel(processes, nats.url, tmp_path / "citadel", "--kubeconfig", str(kubeconfig),
                         "--authenticators", "bootstrap", "--ca-store", "kube", "--ca-namespace", NAMESPACE,
                         "--root-cert-configmaps", "--webhook-ca-bundles", "mutating/istio-sidecar-injector",
                         "--root-rotation-auto-fraction", "0", "--root-rotation-min-phase-s", min_phase_s, name=name)


def _store(api: FakeKubeApiServer, plural: str) -> Any:
    return next(t for t in api.store.types.values() if t.plural == plural)


def _configmap_roots(api: FakeKubeApiServer) -> dict[str, tuple[str, ...]]:
    items, _ = api.store.list(_store(api, "configmaps"), None, lambda labels: True)
    return {o["metadata"]["namespace"]: tuple(fingerprint(c) for c in load_certs(o["data"]["root-cert.pem"]))
            for o in items if o["metadata"]["name"] == "istio-ca-root-cert"}


def _everywhere(api: FakeKubeApiServer, roots: tuple[str, ...]) -> bool:
    """Every wanted namespace's ConfigMap and the webhook's caBundle hold exactly `roots`, in order."""
    webhook = api.store.get(_store(api, "mutatingwebhookconfigurations"), ("", "istio-sidecar-injector"))
    bundle = webhook["webhooks"][0]["clientConfig"].get("caBundle")
    return (_configmap_roots(api) == dict.fromkeys(WANTED, roots) and bundle is not None
            and tuple(fingerprint(c) for c in load_certs(base64.b64decode(bundle))) == roots)


def _secret(api: FakeKubeApiServer) -> dict[str, bytes]:
    secret = api.store.get(_store(api, "secrets"), (NAMESPACE, "istio-ca-secret"))
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def _rotation(citadel: Citadel) -> dict[str, Any]:
    return dict(HTTP.get(f"http://127.0.0.1:{citadel.monitoring_port}/ca/rotation", timeout=5).json())


def test_a_rotation_is_kept_in_the_secret_and_reaches_every_configmap(
        processes: ProcessGroup, nats: NatsServer, tmp_path: Path, kube_api: FakeKubeApiServer) -> None:
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    first = _start(processes, nats, tmp_path, kubeconfig, "600", "citadel-1")
    old = fingerprint(load_certs(_secret(kube_api)["ca-cert.pem"])[0])
    wait_until(lambda: _everywhere(kube_api, (old,)), what="the root in every ConfigMap and the caBundle")

    response = HTTP.post(f"http://127.0.0.1:{first.monitoring_port}/ca/rotation", timeout=5)
    assert response.status_code == 202, response.text
    wait_until(lambda: _rotation(first)["phase"] == "published", what="the new root published")
    new = _rotation(first)["roots"][1]["fingerprint"]
    wait_until(lambda: _everywhere(kube_api, (old, new)), what="both roots, the signing one first, everywhere")
    stored = _secret(kube_api)
    assert fingerprint(load_certs(stored["next-ca-cert.pem"])[0]) == new
    assert [fingerprint(c) for c in load_certs(stored["root-cert.pem"])] == [old, new]
    # Nobody reports, so only the phase's minimum holds it: 600 s, longer than this test.
    assert "lasts at least 600s" in _rotation(first)["step"]["reason"]
    again = HTTP.post(f"http://127.0.0.1:{first.monitoring_port}/ca/rotation", timeout=5)
    assert again.status_code == 202 and again.json()["phase"] == "published", "a second request changes nothing"
    first.process.stop()

    # A new citadel reads the phase back from the Secret and finishes the same rotation.
    second = _start(processes, nats, tmp_path, kubeconfig, "0.5", "citadel-2")
    wait_until(lambda: _rotation(second)["phase"] == "stable", what="the rotation finished after the restart")
    wait_until(lambda: _everywhere(kube_api, (new,)), what="the new root alone everywhere")
    stored = _secret(kube_api)
    assert set(stored) == {"ca-cert.pem", "ca-key.pem"}, "a stable root keeps Istio's two keys"
    assert fingerprint(load_certs(stored["ca-cert.pem"])[0]) == new
    assert second.metric('citadel_root_rotation_steps_total{step="begin"}') == 0
    assert second.metric('citadel_root_rotation_steps_total{step="drop"}') == 1
