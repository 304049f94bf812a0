"""Which informers galley's Kubernetes source runs, and what it reads from an object."""

from __future__ import annotations

from libs.config import supported_kinds
from libs.kube import ApiGroup, ResourceRef
from services.galley.sources.kubernetes import KindWatch, config_body, plan_watches

NETWORKING = "networking.istio.io"


def groups(*versions: str) -> dict[str, ApiGroup]:
    kinds = supported_kinds()
    return {g: ApiGroup(g, versions, versions[0]) for g in {k.group for k in kinds}}


def test_one_version_per_kind_the_preferred_one() -> None:
    kinds = [k for k in supported_kinds() if "v1" in k.versions]
    watches, missing = plan_watches(kinds, groups("v1", "v1beta1", "v1alpha3"))
    assert missing == []
    assert {w.ref.version for w in watches} == {"v1"}
    # One watch per resource type: the ConfigMaps' kinds (mesh and rate-limit config) share one.
    assert sorted(w.ref.plural for w in watches) == sorted({k.plural for k in kinds})


def test_an_older_istio_is_watched_at_the_version_it_serves() -> None:
    vs = next(k for k in supported_kinds() if k.kind == "VirtualService")
    watches, _ = plan_watches([vs], {NETWORKING: ApiGroup(NETWORKING, ("v1alpha3",), "v1alpha3")})
    assert watches == [KindWatch("VirtualService", ResourceRef(NETWORKING, "v1alpha3", "virtualservices"), None)]


def test_one_informer_per_namespace_when_namespaces_are_set() -> None:
    vs = next(k for k in supported_kinds() if k.kind == "VirtualService")
    watches, _ = plan_watches([vs], groups("v1"), ("a", "b"))
    assert [w.namespace for w in watches] == ["a", "b"]


def test_kinds_whose_group_is_not_served_are_reported() -> None:
    watches, missing = plan_watches(supported_kinds(), {})
    # The mesh config's ConfigMaps are core API objects: always served.
    assert [w.kind for w in watches] == ["MeshConfig"]
    assert "VirtualService (networking.istio.io)" in missing


def test_the_mesh_config_is_watched_in_the_mesh_namespace_only() -> None:
    mesh = [k for k in supported_kinds() if k.kind == "MeshConfig"]
    watches, missing = plan_watches(mesh, {}, ("a", "b"), mesh_namespace="istio-control")
    assert watches == [KindWatch("MeshConfig", ResourceRef("", "v1", "configmaps"), "istio-control")]
    assert missing == []


def test_kubectl_last_applied_annotation_is_dropped() -> None:
    body = {"metadata": {"name": "a", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "x"}}}
    assert config_body(body)["metadata"]["annotations"] == {"team": "x"}
    only = {"metadata": {"name": "a", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}}
    assert "annotations" not in config_body(only)["metadata"]
