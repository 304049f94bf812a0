"""Istio's istio-sidecar-injector ConfigMap (config + values) and the mesh config file,
loaded with every problem named by its field."""

from __future__ import annotations

import json

import pytest

from libs.inject import InvalidConfig, load_injection_config, load_mesh_config
from libs.inject._config import DEFAULT_RESOURCES

CONFIG = """
policy: disabled
alwaysInjectSelector:
- matchLabels: {team: mesh}
neverInjectSelector:
- matchExpressions: [{key: openshift.io/build.name, operator: Exists}]
injectedAnnotations:
  container.apparmor.security.beta.kubernetes.io/istio-proxy: runtime/default
template: |
  {{ .Values.global.proxy.image }}
"""
VALUES = {
    "global": {
        "hub": "registry.example/mizzen", "tag": 1.4, "imagePullPolicy": "IfNotPresent",
        "imagePullSecrets": ["pull-a", {"name": "pull-b"}],
        "proxy": {"image": "proxy", "resources": {"requests": {"cpu": "50m"}}, "clusterDomain": "corp.local"},
        "proxy_init": {"image": "other.example/init:9"},
        "caAddress": "citadel.mesh:8060",
        "someIstioValue": {"we": "ignore"},
    },
    "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": False},
    "revision": "canary",
}


def test_config_and_values() -> None:
    config = load_injection_config(CONFIG, json.dumps(VALUES), source="cm")
    assert config.policy == "disabled"
    assert config.always_inject[0].matches({"team": "mesh"})
    assert config.never_inject[0].matches({"openshift.io/build.name": "b"})
    assert config.injected_annotations == {"container.apparmor.security.beta.kubernetes.io/istio-proxy":
                                           "runtime/default"}
    values = config.values
    assert values.image(values.proxy_image) == "registry.example/mizzen/proxy:1.4"
    # A name with a "/" is a whole reference.
    assert values.image(values.proxy_init_image) == "other.example/init:9"
    assert values.image_pull_secrets == ("pull-a", "pull-b")
    assert values.proxy_resources == {"requests": {"cpu": "50m"}}
    assert (values.cluster_domain, values.ca_address, values.revision_name) == ("corp.local", "citadel.mesh:8060",
                                                                                "canary")
    assert values.rewrite_app_probes is False
    assert config.warnings == ("cm: config.template holds Istio templates; Mizzen renders its own sidecar and "
                               "ignores it",)


def test_defaults_without_files() -> None:
    config = load_injection_config(None, None)
    assert config.policy == "enabled"
    assert config.values.proxy_resources == DEFAULT_RESOURCES
    assert config.values.image(config.values.proxy_image) == "docker.io/mizzen/mizzen:latest"


@pytest.mark.parametrize(("config", "values", "message"), [
    ("policy: sometimes", "", "cm: config.policy: 'sometimes' is not enabled or disabled"),
    ("neverInjectSelector: [{matchExpressions: [{key: a, operator: Near}]}]", "",
     "config.neverInjectSelector[0].matchExpressions[0].operator: 'Near' is not one of In, NotIn"),
    ("alwaysInjectSelector: [{matchExpressions: [{key: a, operator: In}]}]", "",
     "config.alwaysInjectSelector[0].matchExpressions[0].values: In needs at least one value"),
    ("", '{"global": {"proxy": {"resources": {"limits": {"cpu": "lots"}}}}}',
     "values.global.proxy.resources.limits.cpu: 'lots' is not a Kubernetes quantity"),
    ("", '{"global": {"imagePullPolicy": "Sometimes"}}', "values.global.imagePullPolicy: 'Sometimes' is not"),
    ("", '{"global": {"proxy": {"readinessPeriodSeconds": -1}}}',
     "values.global.proxy.readinessPeriodSeconds: must be a non-negative integer"),
    ("", '{"global": {"proxy": "big"}}', "values.global.proxy.image: is inside something that is not an object"),
    ("", "{not json", "cm: values: is not YAML or JSON"),
])
def test_bad_config_is_named_by_field(config: str, values: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        load_injection_config(config, values, source="cm")
    assert message in str(caught.value)


def test_mesh_config_file_as_yaml_or_configmap() -> None:
    mesh = load_mesh_config("trustDomain: corp.example\ndefaultConfig:\n  concurrency: 4\n  drainDuration: 1m\n",
                            "mesh.yaml")
    assert (mesh.trust_domain, mesh.default_config) == ("corp.example", {"concurrency": 4, "drainDuration": "60s"})
    configmap = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n"
                 "data:\n  mesh: |\n    trustDomain: other.example\n")
    assert load_mesh_config(configmap, "cm.yaml").trust_domain == "other.example"


def test_bad_mesh_config_is_refused_by_field() -> None:
    with pytest.raises(InvalidConfig, match=r"mesh.yaml: .*defaultConfig.concurrency: must be an integer"):
        load_mesh_config("defaultConfig:\n  concurrency: many\n", "mesh.yaml")
