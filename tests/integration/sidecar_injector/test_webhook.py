"""The sidecar injector over real HTTPS: AdmissionReviews in, JSON patches applied as the
API server applies them, and the pods compared with what `mizzenctl kube-inject` makes.

One control plane per module: nats-server, galley (the mesh config, from a file), citadel
(the webhook's certificate) and the injector (injection config and values from files).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from libs.inject import MeshSettings, load_injection_config
from tests.harness.citadel import Citadel, start_citadel
from tests.harness.mesh import GalleyService, Mesh
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.sidecar_injector import CITADEL_GRANTS, Injector, admission_review, patched, start_injector
from tests.harness.waiting import wait_until
from tools.mizzenctl.kube_inject import inject_text

pytestmark = pytest.mark.integration

TESTDATA = Path(__file__).resolve().parents[2] / "unit" / "inject" / "testdata"
MESH = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    trustDomain: corp.example
    defaultConfig:
      discoveryAddress: istio-pilot.istio-system.svc:15010
      proxyMetadata: {{MESH_GENERATION: "{generation}"}}
"""
VALUES = {"global": {"hub": "registry.example/mizzen", "tag": "1.0", "imagePullSecrets": ["regcred"]}}


@dataclass
class ControlPlane:
    group: ProcessGroup
    work: Path
    nats_url: str
    galley: GalleyService
    citadel: Citadel
    injector: Injector
    mesh_file: Path
    values_file: Path

    def kube_inject(self, pod: dict[str, Any]) -> dict[str, Any]:
        """What `mizzenctl kube-inject` makes of the same pod, with the same config."""
        config = load_injection_config(None, self.values_file.read_text())
        mesh = MeshSettings(trust_domain="corp.example", default_config={
            "discoveryAddress": "istio-pilot.istio-system.svc:15010", "proxyMetadata": {"MESH_GENERATION": "1"}})
        output = inject_text(yaml.safe_dump(pod), "pod.yaml", config, mesh, lambda _: None)
        document: dict[str, Any] = yaml.safe_load(output.removesuffix("---\n"))
        return document


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    work = tmp_path_factory.mktemp("injector")
    (work / "logs").mkdir()
    group = ProcessGroup(work / "logs")
    try:
        nats = start_nats(group, work / "nats")
        config_dir = work / "config"
        config_dir.mkdir()
        mesh_file = config_dir / "mesh.yaml"
        mesh_file.write_text(MESH.format(generation=1))
        galley = Mesh(group, nats, work).galley(config_dir)
        citadel = start_citadel(group, nats.url, work / "citadel", *CITADEL_GRANTS)
        values_file = work / "values.json"
        values_file.write_text(json.dumps(VALUES))
        config_file = work / "config.yaml"
        config_file.write_text("policy: enabled\nneverInjectSelector: [{matchLabels: {team: legacy}}]\n")
        injector = start_injector(group, nats.url, citadel, work / "injector", "--inject-config-file",
                                  str(config_file), "--inject-values-file", str(values_file))
        yield ControlPlane(group, work, nats.url, galley, citadel, injector, mesh_file, values_file)
    except BaseException:
        print(group.logs())
        raise
    finally:
        group.stop_all()


def lines(document: dict[str, Any]) -> list[str]:
    return json.dumps(document, indent=1, sort_keys=True).splitlines()


def pod_of(fixture: str, index: int = 0, *, name: str = "web-7f9c", namespace: str = "shop") -> dict[str, Any]:
    """A fixture's pod template as the Pod the API server is about to create."""
    document = list(yaml.safe_load_all((TESTDATA / fixture).read_text()))[index]
    template = document if document["kind"] == "Pod" else document["spec"]["template"]
    metadata = {**copy.deepcopy(template.get("metadata") or {}), "name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template["spec"])}


@pytest.mark.parametrize("fixture", ["hello.yaml", "probes.yaml", "traffic-annotations.yaml", "multi-init.yaml",
                                     "resource-annotations.yaml"])
def test_webhook_gives_the_pod_kube_inject_gives(plane: ControlPlane, fixture: str) -> None:
    pod = pod_of(fixture)
    response = plane.injector.review(pod, "shop", uid="uid-" + fixture)
    assert response["uid"] == "uid-" + fixture
    assert response["allowed"] is True
    injected = patched(pod, response)
    # As lines, so a difference shows as the one field that differs.
    assert lines(injected) == lines(plane.kube_inject(pod))
    proxy = next(c for c in injected["spec"]["containers"] if c["name"] == "istio-proxy")
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    # The mesh config galley published reached the injector.
    assert (env["TRUST_DOMAIN"], env["MESH_GENERATION"]) == ("corp.example", "1")
    assert proxy["image"] == "registry.example/mizzen/mizzen:1.0"
    assert injected["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_an_injected_pod_is_admitted_unchanged(plane: ControlPlane) -> None:
    injected = patched(pod_of("probes.yaml"), plane.injector.review(pod_of("probes.yaml")))
    again = plane.injector.review(injected)
    assert again["allowed"] is True and "patch" not in again


@pytest.mark.parametrize(("pod", "namespace"), [
    (pod_of("skipped.yaml", 1), "shop"),                    # sidecar.istio.io/inject=false
    (pod_of("skipped.yaml", 0), "shop"),                    # hostNetwork
    (pod_of("hello.yaml"), "kube-system"),
    ({**pod_of("hello.yaml"), "metadata": {"name": "old", "labels": {"team": "legacy"}}}, "shop"),  # never selector
])
def test_pods_the_decision_skips_are_admitted_untouched(plane: ControlPlane, pod: dict[str, Any],
                                                       namespace: str) -> None:
    skipped = plane.injector.metric("sidecar_injection_skip_total")
    response = plane.injector.review(pod, namespace)
    assert response == {"uid": response["uid"], "allowed": True}
    assert plane.injector.metric("sidecar_injection_skip_total") == skipped + 1


@pytest.mark.parametrize(("annotations", "field"), [
    ({"traffic.sidecar.istio.io/excludeOutboundPorts": "bad"},
     "metadata.annotations[traffic.sidecar.istio.io/excludeOutboundPorts]: 'bad' is not a port number (1-65535)"),
    ({"proxy.istio.io/config": "concurrency: lots"},
     "metadata.annotations[proxy.istio.io/config].concurrency: must be an integer, not string"),
])
def test_a_pod_that_cannot_be_rendered_is_denied_cleanly(plane: ControlPlane, annotations: dict[str, str],
                                                        field: str) -> None:
    failures = plane.injector.metric("sidecar_injection_failure_total")
    pod = pod_of("hello.yaml")
    pod["metadata"]["annotations"] = annotations
    response = plane.injector.review(pod, uid="denied")
    assert response["uid"] == "denied"
    assert response["allowed"] is False
    assert "patch" not in response and "patchType" not in response
    assert response["status"]["code"] == 400
    assert response["status"]["message"] == f"sidecar injection failed: {field}"
    assert plane.injector.metric("sidecar_injection_failure_total") == failures + 1


def test_a_probe_on_a_missing_named_port_is_denied(plane: ControlPlane) -> None:
    pod = pod_of("hello.yaml")
    pod["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": "health"}}
    status = plane.injector.review(pod)["status"]
    assert status["message"].endswith("spec.containers[0].livenessProbe.httpGet.port: container 'hello' has no "
                                      "port named 'health' (its named ports: http)")


def test_what_is_not_an_admission_review_gets_http_400(plane: ControlPlane) -> None:
    assert plane.injector.post({"kind": "Pod"}).status_code == 400
    assert plane.injector.post([1, 2]).status_code == 400
    other = admission_review(pod_of("hello.yaml"), "shop", operation="UPDATE")
    assert plane.injector.post(other).json()["response"] == {"uid": other["request"]["uid"], "allowed": True}


def test_mesh_config_changes_reach_the_next_pod(plane: ControlPlane) -> None:
    plane.mesh_file.write_text(MESH.format(generation=2))

    def generation() -> str:
        injected = patched(pod_of("hello.yaml"), plane.injector.review(pod_of("hello.yaml")))
        proxy = next(c for c in injected["spec"]["containers"] if c["name"] == "istio-proxy")
        return next(e["value"] for e in proxy["env"] if e["name"] == "MESH_GENERATION")

    try:
        wait_until(lambda: generation() == "2", timeout=20, what="the injector to use the new mesh config")
    finally:
        plane.mesh_file.write_text(MESH.format(generation=1))
        wait_until(lambda: generation() == "1", timeout=20, what="the mesh config to be restored")


def test_injection_values_reload_and_a_broken_file_keeps_the_last_good(plane: ControlPlane) -> None:
    def image() -> str:
        injected = patched(pod_of("hello.yaml"), plane.injector.review(pod_of("hello.yaml")))
        return str(next(c["image"] for c in injected["spec"]["containers"] if c["name"] == "istio-proxy"))

    def write(text: str) -> None:
        # Atomically, as the kubelet swaps a ConfigMap volume's files: a reader between a
        # truncation and a write would see an empty file, which is valid (all defaults).
        staging = plane.values_file.with_name(f".{plane.values_file.name}.tmp")
        staging.write_text(text)
        os.replace(staging, plane.values_file)

    original = plane.values_file.read_text()
    try:
        write(json.dumps({"global": {"hub": "registry.example/mizzen", "tag": "2.0"}}))
        wait_until(lambda: image() == "registry.example/mizzen/mizzen:2.0", timeout=20, what="new values")
        errors = plane.injector.metric("sidecar_injector_config_errors_total")
        write('{"global": {"imagePullPolicy": "Sometimes"}}')
        wait_until(lambda: plane.injector.metric("sidecar_injector_config_errors_total") > errors, timeout=20,
                   what="the broken values to be refused")
        assert image() == "registry.example/mizzen/mizzen:2.0"
    finally:
        write(original)
        wait_until(lambda: image() == "registry.example/mizzen/mizzen:1.0", timeout=20, what="values restored")


def test_certificate_renewed_without_a_restart(plane: ControlPlane) -> None:
    """A certificate living 4 s is renewed at a third of its life; new handshakes get the
    new one from the same process, and reviews keep being answered."""
    injector = start_injector(plane.group, plane.nats_url, plane.citadel, plane.work / "short", "--cert-ttl-s", "4",
                              "--cert-rotation-fraction", "0.3", name="short-lived-injector")
    first = injector.certificate()
    dns = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert dns == ["istio-sidecar-injector.istio-system.svc", "localhost"]
    renewed = wait_until(lambda: (cert := injector.certificate()).serial_number != first.serial_number and cert,
                         timeout=20, what="a renewed webhook certificate")
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    assert injector.process.alive()
    assert injector.review(pod_of("hello.yaml"))["allowed"] is True
    assert injector.metric("sidecar_injector_serving_certs_total") >= 2
    injector.process.stop()
