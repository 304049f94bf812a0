"""Galley's KubernetesSource, in-process, against the fake API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from libs.config import supported_kinds
from libs.kube import KubeClient
from libs.runtime import Backoff
from services.galley.sources.kubernetes import KubernetesSource
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_resources import CORE_TYPES, ISTIO_TYPES, istio_types
from tests.integration.kube.conftest import FAST
from tests.integration.kube.helpers import eventually

pytestmark = pytest.mark.integration

NET = "networking.istio.io"
ORIGIN = "kubernetes:virtualservices/default/reviews"


def virtual_service(name: str = "reviews", *, version: str = "v1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{NET}/{version}", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}}]}], **spec}}


class Changes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@contextlib.asynccontextmanager
async def running(source: KubernetesSource) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(source.run(), name="kubernetes source")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def source(kube: KubeClient, changes: Changes) -> KubernetesSource:
    return KubernetesSource(kube, settings=FAST, on_change=changes,
                            discovery_backoff=Backoff(initial_s=0.01, maximum_s=0.05))


def resource(source: KubernetesSource, name: str = "reviews") -> Any:
    return next((r for _, r in source.resources().values() if r.kind == "VirtualService" and r.name == name), None)


def replace(kube_api: FakeKubeApiServer, body: dict[str, Any]) -> None:
    rtype = kube_api.store.types[(NET, "virtualservices")]
    kube_api.store.replace(rtype, ("default", body["metadata"]["name"]), body)


async def test_valid_invalid_and_deleted_objects(source: KubernetesSource, kube_api: FakeKubeApiServer,
                                                 changes: Changes) -> None:
    kube_api.create(virtual_service(version="v1alpha3"))
    async with running(source):
        await asyncio.wait_for(source.wait_synced(), 5)
        assert changes.count == 1  # the initial sync, once every kind is listed
        origin, loaded = next(iter(source.resources().values()))
        assert (str(origin), loaded.api_version, loaded.spec["hosts"]) == (ORIGIN, f"{NET}/v1", ["reviews"])
        assert loaded.annotations == {}  # kubectl's copy of the object is not config

        replace(kube_api, virtual_service(http=[{"route": [{"destination": {"host": "reviews"}, "weight": -5}]}]))
        await eventually(lambda: ORIGIN in source.errors, what="the invalid update to be reported")
        # The error names where it came from, the resource and the field (the wording is libs.config's).
        [error] = source.errors[ORIGIN]
        assert error.startswith(f"{ORIGIN}: VirtualService default/reviews: spec.http[0].route[0].weight: ")
        assert resource(source).spec == loaded.spec  # the last valid version is still served

        replace(kube_api, virtual_service(hosts=["reviews", "reviews.default.svc.cluster.local"]))
        await eventually(lambda: len(resource(source).spec["hosts"]) == 2, what="the fixed update")
        assert ORIGIN not in source.errors

        kube_api.create(virtual_service("ratings"))
        await eventually(lambda: resource(source, "ratings"), what="a new VirtualService")
        before = changes.count
        kube_api.store.delete(kube_api.store.types[(NET, "virtualservices")], ("default", "reviews"))
        await eventually(lambda: resource(source) is None, what="the deleted VirtualService to go")
        assert changes.count > before
        assert [r.name for _, r in source.resources().values()] == ["ratings"]


async def test_an_object_invalid_from_the_start_is_reported_not_served(
        source: KubernetesSource, kube_api: FakeKubeApiServer) -> None:
    kube_api.create(virtual_service(hosts="reviews"))
    with structlog.testing.capture_logs() as logs:
        async with running(source):
            await asyncio.wait_for(source.wait_synced(), 5)
            assert source.resources() == {}
            assert list(source.errors) == [ORIGIN]
            assert source.errors[ORIGIN][0].startswith(f"{ORIGIN}: VirtualService default/reviews: spec.hosts: ")
            kube_api.store.delete(kube_api.store.types[(NET, "virtualservices")], ("default", "reviews"))
            await eventually(lambda: not source.errors, what="the error to go with its object")
    # The log names the resource, the field and the reason as fields, not inside a message.
    [logged] = [entry for entry in logs if entry["event"] == "invalid config; ignored"]
    assert logged == {"event": "invalid config; ignored", "log_level": "error", "origin": ORIGIN,
                      "resource": "VirtualService default/reviews", "field": "spec.hosts",
                      "reason": logged["reason"], "resource_version": "2"}
    assert logged["reason"] and "\n" not in logged["reason"]


async def test_only_supported_kinds_are_watched_at_one_version(
        source: KubernetesSource, kube_api: FakeKubeApiServer) -> None:
    supported = {k.kind for k in supported_kinds()}
    unsupported = [t for t in ISTIO_TYPES if t.kind not in supported]
    assert unsupported, "the fake serves Istio kinds Mizzen does not support"
    for rtype in unsupported:
        kube_api.create({"apiVersion": f"{rtype.group}/{rtype.versions[-1]}", "kind": rtype.kind,
                         "metadata": {"name": "x", "namespace": "default"}, "spec": {}})
    async with running(source):
        await asyncio.wait_for(source.wait_synced(), 5)
        watched = {(w.ref.group, w.ref.version, w.ref.plural) for w in source.watched}
    # Every supported resource type once (the ConfigMaps' kinds share a watch), at v1 wherever
    # Mizzen reads v1 (Istio's preferred version).
    assert sorted(plural for _, _, plural in watched) == sorted({k.plural for k in supported_kinds()})
    assert {(k.group, "v1", k.plural) for k in supported_kinds() if "v1" in k.versions} <= watched
    asked = {r.path for r in kube_api.requests if r.path.startswith("/apis/") and r.method == "GET"}
    assert asked == {f"/apis/{group}/{version}/{plural}" for group, version, plural in watched if group}
    assert all(f"/{t.plural}" not in path for t in unsupported for path in asked)
    assert source.resources() == {}


@pytest.fixture
def old_istio(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    """A cluster whose Istio CRDs serve v1alpha3 only (Istio 1.0's)."""
    with FakeKubeApiServer([*CORE_TYPES, *istio_types(only_versions=("v1alpha3",))]) as api:
        yield api


async def test_an_older_istio_is_read_at_the_version_it_serves(old_istio: FakeKubeApiServer, tmp_path: Path) -> None:
    old_istio.create(virtual_service(version="v1alpha3"))
    kube = KubeClient.from_kubeconfig(old_istio.write_kubeconfig(tmp_path / "kubeconfig"))
    try:
        source = KubernetesSource(kube, settings=FAST)
        async with running(source):
            await asyncio.wait_for(source.wait_synced(), 5)
        assert {w.ref.version for w in source.watched if w.ref.group} == {"v1alpha3"}
        assert resource(source).api_version == f"{NET}/v1alpha3"
    finally:
        kube.close()


async def test_kinds_without_crds_count_as_empty_until_their_crds_appear(tmp_path: Path) -> None:
    networking_only = [t for t in istio_types() if t.group == NET]
    with FakeKubeApiServer([*CORE_TYPES, *networking_only]) as api:
        api.fail_next(2, plural="apis")  # discovery itself fails at first: retried, and not synced meanwhile
        kube = KubeClient.from_kubeconfig(api.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            source = KubernetesSource(kube, settings=FAST, discovery_backoff=Backoff(initial_s=0.01, maximum_s=0.02),
                                      rediscover_interval_s=0.02)
            async with running(source):
                await asyncio.wait_for(source.wait_synced(), 5)
                assert len([r for r in api.requests if r.path == "/apis"]) >= 3  # two failed, then answered
                assert {w.ref.group for w in source.watched} == {NET, ""}  # "": the mesh config's ConfigMap
                policy = next(t for t in istio_types() if t.kind == "AuthorizationPolicy")
                api.install(policy)
                api.create({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                            "metadata": {"name": "deny-evil", "namespace": "default"},
                            "spec": {"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["evil"]}}]}]}})
                found = await eventually(lambda: [r for _, r in source.resources().values()
                                                  if r.kind == "AuthorizationPolicy"], what="the new kind's object")
            assert found[0].spec["action"] == "DENY"
        finally:
            kube.close()


async def test_a_restarted_run_forgets_what_was_deleted_meanwhile(
        source: KubernetesSource, kube_api: FakeKubeApiServer) -> None:
    kube_api.create(virtual_service("reviews"))
    kube_api.create(virtual_service("ratings"))
    kube_api.create(virtual_service("broken", hosts="broken"))
    async with running(source):
        await asyncio.wait_for(source.wait_synced(), 5)
        assert len(source.errors) == 1
    rtype = kube_api.store.types[(NET, "virtualservices")]
    kube_api.store.delete(rtype, ("default", "ratings"))
    kube_api.store.delete(rtype, ("default", "broken"))
    list_requests = len(kube_api.list_requests("virtualservices"))
    async with running(source):
        await eventually(lambda: len(kube_api.list_requests("virtualservices")) > list_requests, what="a relist")
        await eventually(lambda: resource(source, "ratings") is None and not source.errors,
                         what="what was deleted meanwhile to be dropped")
        assert resource(source, "reviews") is not None


async def test_watch_namespaces_limits_what_is_read(kube: KubeClient, kube_api: FakeKubeApiServer) -> None:
    kube_api.create(virtual_service("reviews"))
    kube_api.create({**virtual_service("ratings"), "metadata": {"name": "ratings", "namespace": "other"}})
    source = KubernetesSource(kube, namespaces=("other",), settings=FAST)
    async with running(source):
        await asyncio.wait_for(source.wait_synced(), 5)
    assert [(r.namespace, r.name) for _, r in source.resources().values()] == [("other", "ratings")]
    assert all("/namespaces/other/" in r.path for r in kube_api.requests if "/virtualservices" in r.path)


async def test_the_mesh_config_comes_from_the_istio_configmap_of_istio_system(
        source: KubernetesSource, kube_api: FakeKubeApiServer) -> None:
    def configmap(name: str, namespace: str, mesh: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                "data": {"mesh": mesh}}

    kube_api.create(configmap("istio", "istio-system", "rootNamespace: istio-config\n"))
    kube_api.create(configmap("unrelated", "istio-system", "not: mesh config"))
    kube_api.create(configmap("istio", "default", "rootNamespace: elsewhere\n"))
    async with running(source):
        await asyncio.wait_for(source.wait_synced(), 5)
        [mesh] = [r for _, r in source.resources().values()]
        assert (mesh.kind, mesh.namespace) == ("MeshConfig", "istio-system")
        assert mesh.spec == {"rootNamespace": "istio-config"}
        # A bad edit is refused with the field named, and the last good mesh config stays.
        kube_api.store.replace(kube_api.store.types[("", "configmaps")], ("istio-system", "istio"),
                              configmap("istio", "istio-system", "rootNamespace: Not_A_Namespace\n"))
        await eventually(lambda: source.errors, what="the bad mesh config to be reported")
        [errors] = source.errors.values()
        assert "MeshConfig istio-system/istio: data.mesh.rootNamespace: " in errors[0]
        assert [r.spec for _, r in source.resources().values()] == [{"rootNamespace": "istio-config"}]
    assert all("/namespaces/istio-system/configmaps" in r.path for r in kube_api.requests if "configmaps" in r.path)


async def test_the_rate_limit_config_comes_from_the_ratelimit_config_configmap_beside_it(
        source: KubernetesSource, kube_api: FakeKubeApiServer) -> None:
    config = "domain: ratelimit\ndescriptors:\n- key: PATH\n  rate_limit: {unit: minute, requests_per_unit: 100}\n"
    kube_api.create({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "ratelimit-config", "namespace": "istio-system"},
                     "data": {"config.yaml": config}})
    kube_api.create({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "istio", "namespace": "istio-system"},
                     "data": {"mesh": "rootNamespace: istio-system\n"}})
    async with running(source):
        await asyncio.wait_for(source.wait_synced(), 5)
        found = {r.kind: r for _, r in source.resources().values()}
        assert set(found) == {"MeshConfig", "RateLimitConfig"}
        assert found["RateLimitConfig"].spec["configs"]["config.yaml"]["domain"] == "ratelimit"
    # One watch of the namespace's ConfigMaps serves both kinds.
    assert len({r.path for r in kube_api.requests if "configmaps" in r.path and r.method == "GET"}) == 1
