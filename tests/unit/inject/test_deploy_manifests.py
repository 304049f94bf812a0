"""The shipped manifests: the webhook fails closed only where it is scoped to pods that
want a sidecar, and the injector ConfigMap loads as the injector and kube-inject read it."""

from __future__ import annotations

from pathlib import Path

import yaml

from libs.inject import InjectionConfig, injection_config_from_configmap

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base"
SYSTEM = {"kube-system", "kube-public", "kube-node-lease"}


def test_webhooks_are_scoped_so_an_outage_blocks_only_opted_in_pods() -> None:
    config = yaml.safe_load((DEPLOY / "sidecar-injector-webhook.yaml").read_text())
    assert config["kind"] == "MutatingWebhookConfiguration"
    for webhook in config["webhooks"]:
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["clientConfig"]["service"]["path"] == "/inject"
        assert webhook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                     "resources": ["pods"]}]
        namespace = webhook["namespaceSelector"]["matchExpressions"]
        objects = webhook["objectSelector"]["matchExpressions"]
        # Kubernetes' own namespaces never depend on the injector.
        assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": sorted(SYSTEM)} in [
            {**e, "values": sorted(e.get("values", []))} for e in namespace]
        opted_in_namespace = any(e["operator"] == "In" and e["key"] in ("istio-injection", "istio.io/rev")
                                 for e in namespace)
        opted_in_pod = {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]} in objects
        # Failing closed is safe only for pods that asked for a sidecar, one way or the other.
        assert webhook["failurePolicy"] == "Fail"
        assert opted_in_namespace or opted_in_pod, webhook["name"]


def test_injector_configmap_loads_with_the_defaults_it_documents() -> None:
    configmap = yaml.safe_load((DEPLOY / "sidecar-injector-configmap.yaml").read_text())
    config = injection_config_from_configmap(configmap, "sidecar-injector-configmap.yaml")
    defaults = InjectionConfig()
    assert config.policy == "enabled" and config.warnings == ()
    # The image the control plane's Deployments run (`mizzen:latest`), fully spelled out.
    assert config.values.image(config.values.proxy_image) == "docker.io/library/mizzen:latest"
    assert config.values.image(config.values.proxy_init_image) == "docker.io/library/mizzen:latest"
    assert dict(config.values.proxy_resources) == dict(defaults.values.proxy_resources)
    assert config.values.image_pull_policy == "IfNotPresent"
