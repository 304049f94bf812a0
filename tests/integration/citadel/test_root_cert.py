"""Citadel's root where Kubernetes needs it, against the fake API server over real HTTP: the
istio-ca-root-cert ConfigMap in every namespace but Kubernetes' own (new namespaces too, and
put back when edited or deleted), and the webhooks' caBundle (set again after a re-apply)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.kube import KubeClient, WatchSettings
from libs.runtime import Backoff
from services.citadel.root_cert import (
    ROOT_CERT_CONFIGMAP,
    RootCertPublisher,
    WebhookConfiguration,
    ca_bundle_patch,
    parse_webhook_configurations,
)
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import ResourceType, cluster_types
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = "-----BEGIN CERTIFICATE-----\nMIIB...root\n-----END CERTIFICATE-----\n"
FAST = WatchSettings(watch_timeout_s=300, read_grace_s=5.0, backoff=Backoff(initial_s=0.01, maximum_s=0.05))


def rtype(api: FakeKubeApiServer, plural: str) -> ResourceType:
    return next(t for t in api.store.types.values() if t.plural == plural)


def namespace(name: str, **status: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    return {**obj, "status": status} if status else obj


def webhook_configuration(kind: str, name: str, *webhooks: str) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": [{"name": w, "clientConfig": {"service": {"name": name, "namespace": "istio-system"}},
                          "sideEffects": "None", "admissionReviewVersions": ["v1"]} for w in webhooks]}


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer(cluster_types()) as api:
        for name in ("istio-system", "default", "kube-system", "shop"):
            api.create(namespace(name))
        api.create(namespace("leaving", phase="Terminating"))
        api.create(webhook_configuration("MutatingWebhookConfiguration", "istio-sidecar-injector",
                                         "namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io"))
        api.create(webhook_configuration("ValidatingWebhookConfiguration", "istio-galley", "validation.istio.io"))
        api.create(webhook_configuration("ValidatingWebhookConfiguration", "someone-else", "other.example.com"))
        yield api


@pytest.fixture
async def publishing(kube_api: FakeKubeApiServer, tmp_path: Path) -> AsyncIterator[None]:
    kube = KubeClient.from_kubeconfig(kube_api.write_kubeconfig(tmp_path / "kubeconfig"), request_timeout_s=5.0)
    publisher = RootCertPublisher(kube, ROOT, configmaps=True, watch=FAST, webhooks=parse_webhook_configurations(
        ["mutating/istio-sidecar-injector", "validating/istio-galley"]))
    tasks = [asyncio.create_task(loop(), name=name) for name, loop in publisher.tasks()]
    try:
        yield
        for task in tasks:
            assert not task.done(), f"{task.get_name()} ended: {task.exception()!r}"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        kube.close()


def root_configmaps(api: FakeKubeApiServer) -> dict[str, dict[str, Any]]:
    items, _ = api.store.list(rtype(api, "configmaps"), None, lambda labels: True)
    return {o["metadata"]["namespace"]: o for o in items if o["metadata"]["name"] == ROOT_CERT_CONFIGMAP}


def ca_bundles(api: FakeKubeApiServer, plural: str, name: str) -> list[str | None]:
    obj = api.store.get(rtype(api, plural), ("", name))
    return [w["clientConfig"].get("caBundle") for w in obj["webhooks"]]


async def until(check: Any, what: str) -> Any:
    return await asyncio.to_thread(wait_until, check, timeout=10, what=what)


@pytest.mark.usefixtures("publishing")
async def test_every_namespace_but_kubernetes_own_gets_the_root_and_keeps_it(kube_api: FakeKubeApiServer) -> None:
    wanted = {"istio-system", "default", "shop"}

    def every_namespace() -> dict[str, dict[str, Any]] | None:
        found = root_configmaps(kube_api)
        return found if set(found) == wanted else None

    found = await until(every_namespace, "the root in every namespace")
    for configmap in found.values():
        assert configmap["data"] == {"root-cert.pem": ROOT}
        assert configmap["metadata"]["labels"] == {"istio.io/config": "true"}

    kube_api.create(namespace("late"))
    await until(lambda: "late" in root_configmaps(kube_api), "the root in a new namespace")

    configmaps = rtype(kube_api, "configmaps")
    kube_api.store.delete(configmaps, ("shop", ROOT_CERT_CONFIGMAP))
    kube_api.store.patch(configmaps, ("default", ROOT_CERT_CONFIGMAP),
                         lambda cm: {**cm, "data": {"root-cert.pem": "tampered"}})
    await until(lambda: (cms := root_configmaps(kube_api)).get("shop", {}).get("data") == {"root-cert.pem": ROOT}
                and cms["default"]["data"] == {"root-cert.pem": ROOT}, "deleted and edited ConfigMaps put back")
    assert set(root_configmaps(kube_api)) == {*wanted, "late"}  # never kube-system, nor a terminating one


@pytest.mark.usefixtures("publishing")
async def test_the_webhooks_trust_citadel_and_go_on_trusting_it_after_a_reapply(
        kube_api: FakeKubeApiServer) -> None:
    bundle = base64.b64encode(ROOT.encode()).decode()
    await until(lambda: ca_bundles(kube_api, "mutatingwebhookconfigurations", "istio-sidecar-injector") == [
        bundle, bundle] and ca_bundles(kube_api, "validatingwebhookconfigurations", "istio-galley") == [bundle],
        "every webhook's caBundle")
    assert ca_bundles(kube_api, "validatingwebhookconfigurations", "someone-else") == [None]

    # A re-apply that drops the caBundle (a replace, as `kubectl replace -f` sends it).
    mutating = rtype(kube_api, "mutatingwebhookconfigurations")
    kube_api.store.replace(mutating, ("", "istio-sidecar-injector"), webhook_configuration(
        "MutatingWebhookConfiguration", "istio-sidecar-injector", "namespace.sidecar-injector.istio.io"))
    await until(lambda: ca_bundles(kube_api, "mutatingwebhookconfigurations", "istio-sidecar-injector") == [bundle],
                "the caBundle set again")


def test_ca_bundle_patch_touches_only_what_differs_and_guards_the_version() -> None:
    configuration = webhook_configuration("MutatingWebhookConfiguration", "w", "a", "b")
    configuration["metadata"]["resourceVersion"] = "7"
    configuration["webhooks"][0]["clientConfig"]["caBundle"] = "Zm9v"
    assert ca_bundle_patch(configuration, "Zm9v") == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "Zm9v"}]
    configuration["webhooks"][1]["clientConfig"]["caBundle"] = "Zm9v"
    assert ca_bundle_patch(configuration, "Zm9v") == []


def test_webhook_configuration_entries_are_checked() -> None:
    assert parse_webhook_configurations(["validating/istio-galley"]) == (
        WebhookConfiguration("validating", "istio-galley"),)
    with pytest.raises(ValueError, match="'istio-galley' is not mutating/<name> or validating/<name>"):
        parse_webhook_configurations(["istio-galley"])
