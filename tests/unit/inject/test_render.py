"""The injected pod, field by field: Istio's shape with Mizzen's agent and capture, and
the errors that refuse a pod without touching it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from libs.capture import capture_rules
from libs.inject import (
    InjectionConfig,
    InvalidPod,
    MeshSettings,
    Values,
    Workload,
    inject,
    load_injection_config,
    render,
)
from services.agent.capture import build_parser, settings_from

DATA = Path(__file__).parent / "testdata"
WORKLOAD = Workload("Deployment", "apps/v1", "web")


def template(name: str, index: int = 0) -> dict[str, Any]:
    document = list(yaml.safe_load_all((DATA / name).read_text()))[index]
    return document["spec"]["template"] if document["kind"] != "Pod" else document


def pod(**annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "web", "labels": {"app": "web"}, "annotations": dict(annotations)},
            "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"name": "http",
                                                                                  "containerPort": 80}]}]}}


def injected(source: dict[str, Any], config: InjectionConfig | None = None,
             mesh: MeshSettings | None = None) -> dict[str, Any]:
    return render(source, "shop", WORKLOAD, config or InjectionConfig(), mesh or MeshSettings())


def container(result: dict[str, Any], name: str, field: str = "containers") -> dict[str, Any]:
    return next(c for c in result["spec"][field] if c["name"] == name)


def env(result: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(result, "istio-proxy")["env"]}


def test_proxy_container_runs_the_agent_as_1337_with_istios_environment() -> None:
    result = injected(pod())
    proxy = container(result, "istio-proxy")
    assert proxy["command"] == ["python", "-m", "services.agent"]
    assert proxy["securityContext"]["runAsUser"] == proxy["securityContext"]["runAsGroup"] == 1337
    assert proxy["ports"] == [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    variables = env(result)
    assert variables["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert variables["INSTANCE_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert variables["SERVICE_ACCOUNT"] == {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}
    assert variables["ISTIO_META_WORKLOAD_NAME"] == "web"
    assert variables["ISTIO_META_OWNER"] == "kubernetes://apis/apps/v1/namespaces/shop/deployments/web"
    # The agent's own knobs, from Istio's variables (Kubernetes expands $(VAR)).
    assert variables["MIZZEN_INSTANCE_IP"] == "$(INSTANCE_IP)"
    assert variables["MIZZEN_IDENTITY_ENABLED"] == "true"
    assert variables["MIZZEN_CITADEL_TOKEN_FILE"] == "/var/run/secrets/tokens/istio-token"
    assert variables["MIZZEN_CITADEL_ROOT_CERT"] == "/var/run/secrets/istio/root-cert.pem"
    assert variables["MIZZEN_LABELS"] == ("app=web,security.istio.io/tlsMode=istio,"
                                          "service.istio.io/canonical-name=web,service.istio.io/canonical-revision=latest")
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert variables["MIZZEN_SDS_SOCKET"].startswith(mounts["workload-socket"])
    assert variables["MIZZEN_STATE_DIR"].startswith(mounts["istio-envoy"])


def test_volumes_token_and_root_and_status() -> None:
    result = injected(pod())
    volumes = {v["name"]: v for v in result["spec"]["volumes"]}
    token = volumes["istio-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "istio-ca"
    assert volumes["istiod-ca-cert"]["configMap"] == {"name": "istio-ca-root-cert"}
    status = json.loads(result["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert status == {"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                      "volumes": ["workload-socket", "istio-envoy", "istio-token", "istiod-ca-cert"],
                      "imagePullSecrets": None, "revision": "default"}
    assert result["spec"]["securityContext"] == {"fsGroup": 1337}


def test_init_container_args_reproduce_the_annotated_capture() -> None:
    """The init container's flags, parsed by the capture command, give the rules the
    traffic annotations ask for (Istio's traffic-annotations case)."""
    result = injected(template("traffic-annotations.yaml"))
    init = container(result, "istio-init", "initContainers")
    assert init["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert init["securityContext"]["runAsUser"] == 0
    settings = settings_from(build_parser().parse_args(init["args"]))
    assert settings.include_inbound_ports == (1, 2, 3)
    assert settings.exclude_inbound_ports == (15090, 15021, 4, 5, 6, 15020)
    assert settings.include_outbound_ip_ranges == ("127.0.0.0/24", "10.96.0.0/24")
    assert settings.exclude_outbound_ip_ranges == ("10.96.0.0/24",)
    assert settings.exclude_outbound_ports == (7, 8, 9)
    rules = [" ".join(r) for r in capture_rules(settings)]
    assert "-t nat -A ISTIO_INBOUND -p tcp --dport 2 -j ISTIO_IN_REDIRECT" in rules
    assert "-t nat -A ISTIO_OUTPUT -d 10.96.0.0/24 -j RETURN" in rules
    assert rules[-1] == "-t nat -A ISTIO_OUTPUT -d 10.96.0.0/24 -j ISTIO_REDIRECT"


def test_proxy_config_annotation_concurrency_and_metadata() -> None:
    variables = env(injected(template("traffic-annotations.yaml")))
    assert variables["MIZZEN_PILOT_ADDRESS"] == "pilot.mesh:15010"
    # concurrency 0: one worker per CPU of the proxy (proxyCPU 4000m).
    assert variables["MIZZEN_ENVOY_CONCURRENCY"] == "4"
    # drainDuration: the agent's Envoy drains replaced listeners that long.
    assert variables["MIZZEN_DRAIN_DURATION_S"] == "20.0"
    assert json.loads(variables["PROXY_CONFIG"]) == {
        "concurrency": 0, "discoveryAddress": "pilot.mesh:15010", "drainDuration": "20s",
        "proxyMetadata": {"FOO": "bar", "MIZZEN_XDS_API": "DELTA_GRPC"}}
    assert (variables["FOO"], variables["MIZZEN_XDS_API"]) == ("bar", "DELTA_GRPC")


def test_annotation_overrides_the_mesh_default_config_field_by_field() -> None:
    mesh = MeshSettings(trust_domain="corp.example",
                        default_config={"concurrency": 3, "proxyMetadata": {"A": "mesh", "B": "mesh"}})
    variables = env(injected(pod(**{"proxy.istio.io/config": "proxyMetadata: {B: pod}"}), mesh=mesh))
    assert variables["MIZZEN_ENVOY_CONCURRENCY"] == "3"
    assert (variables["A"], variables["B"]) == ("mesh", "pod")
    assert variables["MIZZEN_TRUST_DOMAIN"] == variables["TRUST_DOMAIN"] == "corp.example"


def test_resource_annotations_replace_the_values_resources() -> None:
    result = injected(template("resource-annotations.yaml"))
    expected = {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "2Gi"}}
    assert container(result, "istio-proxy")["resources"] == expected
    only_cpu = injected(pod(**{"sidecar.istio.io/proxyCPU": "250m"}))
    assert container(only_cpu, "istio-proxy")["resources"] == {"requests": {"cpu": "250m"}}
    assert container(injected(pod()), "istio-proxy")["resources"]["limits"] == {"cpu": "2000m", "memory": "1024Mi"}


def test_existing_init_containers_run_first() -> None:
    result = injected(template("multi-init.yaml"))
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["init-schema", "init-perms", "istio-init"]
    assert [v["name"] for v in result["spec"]["volumes"]] == ["data", "workload-socket", "istio-envoy", "istio-token",
                                                              "istiod-ca-cert"]


def test_probes_rewritten_and_originals_kept_for_the_agent() -> None:
    result = injected(template("probes.yaml"))
    web, worker = result["spec"]["containers"][:2]
    assert web["livenessProbe"] == {"httpGet": {"path": "/app-health/web/livez", "port": 15020},
                                    "timeoutSeconds": 3, "periodSeconds": 7}
    assert "scheme" not in web["startupProbe"]["httpGet"]
    assert worker["readinessProbe"] == {"exec": {"command": ["cat", "/tmp/healthy"]}}
    assert "grpc" not in worker["startupProbe"] and "tcpSocket" not in worker["livenessProbe"]
    probers = json.loads(env(result)["ISTIO_KUBE_APP_PROBERS"])
    assert probers == {
        "/app-health/web/livez": {"httpGet": {"path": "/live", "port": 80}, "timeoutSeconds": 3},
        "/app-health/web/readyz": {"httpGet": {"path": "/ready", "port": 3333}},
        "/app-health/web/startupz": {"httpGet": {"path": "/started", "port": 9901, "scheme": "HTTPS",
                                                 "httpHeaders": [{"name": "X-Probe", "value": "startup"}]}},
        "/app-health/worker/livez": {"tcpSocket": {"port": 6000}},
        "/app-health/worker/startupz": {"grpc": {"port": 7070, "service": "worker.v1"}, "timeoutSeconds": 2},
    }


def test_probe_rewrite_can_be_turned_off() -> None:
    source = template("probes.yaml")
    off = injected(copy.deepcopy(source) | {"metadata": {"annotations": {
        "sidecar.istio.io/rewriteAppHTTPProbers": "false"}}})
    assert off["spec"]["containers"][0]["livenessProbe"] == source["spec"]["containers"][0]["livenessProbe"]
    assert "ISTIO_KUBE_APP_PROBERS" not in env(off)
    values_off = load_injection_config(None, '{"sidecarInjectorWebhook": {"rewriteAppHTTPProbe": false}}')
    assert "ISTIO_KUBE_APP_PROBERS" not in env(injected(source, values_off))


def test_status_port_moves_the_probes_and_the_agent() -> None:
    source = template("probes.yaml")
    source["metadata"]["annotations"] = {"proxy.istio.io/config": "statusPort: 15120"}
    result = injected(source)
    assert result["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] == 15120
    assert env(result)["MIZZEN_MONITORING_PORT"] == "15120"
    args = container(result, "istio-init", "initContainers")["args"]
    assert 15120 in settings_from(build_parser().parse_args(args)).exclude_inbound_ports


def test_images_pull_secrets_and_injected_annotations_from_values() -> None:
    config = load_injection_config("injectedAnnotations: {example.com/injected: 'yes'}",
                                   '{"global": {"hub": "r.example", "tag": "7", "imagePullSecrets": ["regcred"],'
                                   ' "imagePullPolicy": "Always"}}')
    result = injected(pod(), config)
    proxy = container(result, "istio-proxy")
    assert (proxy["image"], proxy["imagePullPolicy"]) == ("r.example/mizzen:7", "Always")
    assert result["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert json.loads(result["metadata"]["annotations"]["sidecar.istio.io/status"])["imagePullSecrets"] == ["regcred"]
    assert result["metadata"]["annotations"]["example.com/injected"] == "yes"
    override = injected(pod(**{"sidecar.istio.io/proxyImage": "mine.example/proxy:dev"}), config)
    assert container(override, "istio-proxy")["image"] == "mine.example/proxy:dev"


def test_the_patch_turns_the_pod_into_the_injected_pod() -> None:
    source = template("probes.yaml")
    result = inject(source, "shop", WORKLOAD, InjectionConfig(), MeshSettings())
    assert jsonpatch.apply_patch(source, result.patch) == result.pod
    assert inject(result.pod, "shop", WORKLOAD, InjectionConfig(), MeshSettings()).patch == []


@pytest.mark.parametrize(("annotations", "path", "reason"), [
    ({"traffic.sidecar.istio.io/excludeOutboundPorts": "bad"},
     "metadata.annotations[traffic.sidecar.istio.io/excludeOutboundPorts]", "'bad' is not a port number"),
    ({"traffic.sidecar.istio.io/includeInboundPorts": "80,70000"},
     "metadata.annotations[traffic.sidecar.istio.io/includeInboundPorts]", "'70000' is not a port number"),
    ({"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/33"},
     "metadata.annotations[traffic.sidecar.istio.io/includeOutboundIPRanges]", "is not an IP address or CIDR"),
    ({"traffic.sidecar.istio.io/excludeOutboundIPRanges": "fd00::/8"},
     "metadata.annotations[traffic.sidecar.istio.io/excludeOutboundIPRanges]", "IPv4 traffic only"),
    ({"sidecar.istio.io/proxyMemory": "lots"}, "metadata.annotations[sidecar.istio.io/proxyMemory]",
     "not a Kubernetes quantity"),
    ({"proxy.istio.io/config": "concurrency: many"}, "metadata.annotations[proxy.istio.io/config].concurrency",
     "must be an integer"),
    ({"proxy.istio.io/config": "concurency: 2"}, "metadata.annotations[proxy.istio.io/config].concurency",
     "unknown field in ProxyConfig"),
    ({"proxy.istio.io/config": "discoveryAddress: pilot"},
     "metadata.annotations[proxy.istio.io/config].discoveryAddress", "is not host:port"),
    ({"proxy.istio.io/config": "{"}, "metadata.annotations[proxy.istio.io/config]", "is not YAML"),
    ({"sidecar.istio.io/interceptionMode": "TPROXY"}, "metadata.annotations[sidecar.istio.io/interceptionMode]",
     "TPROXY is not supported"),
])
def test_bad_annotations_refuse_the_pod_by_name(annotations: dict[str, str], path: str, reason: str) -> None:
    source = pod(**annotations)
    before = copy.deepcopy(source)
    with pytest.raises(InvalidPod) as caught:
        injected(source)
    assert caught.value.path.startswith(path)
    assert reason in caught.value.reason
    assert source == before


@pytest.mark.parametrize(("change", "path", "reason"), [
    (lambda p: p["spec"]["containers"][0].update(readinessProbe={"httpGet": {"port": "metrics"}}),
     "spec.containers[0].readinessProbe.httpGet.port", "has no port named 'metrics' (its named ports: http)"),
    (lambda p: p["spec"]["containers"].append({"name": "istio-proxy", "image": "x"}),
     "spec.containers[1].name", "istio-proxy is the name of an injected container"),
    (lambda p: p["spec"].update(volumes=[{"name": "istio-envoy", "emptyDir": {}}]),
     "spec.volumes[0].name", "istio-envoy is the name of an injected volume"),
    (lambda p: p["spec"].update(containers=[]), "spec.containers", "at least one container"),
])
def test_pods_that_cannot_take_a_sidecar(change: Any, path: str, reason: str) -> None:
    source = pod()
    change(source)
    with pytest.raises(InvalidPod) as caught:
        injected(source)
    assert (caught.value.path, reason in caught.value.reason) == (path, True), str(caught.value)


def test_values_resources_sized_concurrency() -> None:
    config = InjectionConfig(values=Values(proxy_resources={"limits": {"cpu": "1500m"}}))
    mesh = MeshSettings(default_config={"concurrency": 0})
    assert env(injected(pod(), config, mesh))["MIZZEN_ENVOY_CONCURRENCY"] == "2"
