"""The fake API server's server-side apply and CRD installation, as the real server answers them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.harness.kube_apply import apply, from_fields_v1, to_fields_v1
from tests.harness.kube_resources import INSTALL_TYPES, ISTIO_TYPES, InvalidCrd, crd_type
from tests.harness.kube_store import StoreError

DEPLOYMENTS = next(t for t in INSTALL_TYPES if t.plural == "deployments")
VIRTUAL_SERVICES = next(t for t in ISTIO_TYPES if t.plural == "virtualservices")


def deployment(*containers: dict[str, Any], replicas: int | None = None, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": list(containers)}}}
    if replicas is not None:
        spec["replicas"] = replicas
    metadata: dict[str, Any] = {"name": "pilot", "namespace": "istio-system"}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["template"]["spec"]["containers"])


def test_first_apply_creates_and_records_what_the_manager_owns() -> None:
    config = deployment({"name": "discovery", "image": "mizzen:1"}, replicas=2, app="pilot")
    created = apply(None, config, DEPLOYMENTS, manager="kubectl", force=False)
    assert created["spec"] == config["spec"] and created["metadata"]["labels"] == {"app": "pilot"}
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("kubectl", "Apply", "FieldsV1")
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            'k:{"name":"discovery"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}
    assert from_fields_v1(to_fields_v1(from_fields_v1(entry["fieldsV1"]))) == from_fields_v1(entry["fieldsV1"])


def test_reapply_removes_what_the_manager_dropped_and_keeps_what_others_own() -> None:
    live = apply(None, deployment({"name": "discovery", "image": "mizzen:1"}, {"name": "extra", "image": "x"},
                                  replicas=2, app="pilot"), DEPLOYMENTS, manager="kubectl", force=False)
    # Another manager (an HPA's controller, say) owns replicas too.
    live = apply(live, deployment(replicas=2), DEPLOYMENTS, manager="autoscaler", force=False)
    again = apply(live, deployment({"name": "discovery", "image": "mizzen:2"}), DEPLOYMENTS, manager="kubectl",
                  force=False)
    assert containers(again) == [{"name": "discovery", "image": "mizzen:2"}]  # keyed: merged, "extra" dropped
    assert again["spec"]["replicas"] == 2  # still owned by the autoscaler
    assert "labels" not in again["metadata"] or again["metadata"]["labels"] == {}
    assert [e["manager"] for e in again["metadata"]["managedFields"]] == ["autoscaler", "kubectl"]


def test_the_same_apply_twice_changes_nothing() -> None:
    config = deployment({"name": "discovery", "image": "mizzen:1"}, replicas=1)
    live = apply(None, config, DEPLOYMENTS, manager="kubectl", force=False)
    assert apply(copy.deepcopy(live), config, DEPLOYMENTS, manager="kubectl", force=False) == live


def test_a_field_another_manager_owns_conflicts_unless_forced() -> None:
    live = apply(None, deployment(replicas=1), DEPLOYMENTS, manager="kubectl", force=False)
    with pytest.raises(StoreError) as failure:
        apply(live, deployment(replicas=3), DEPLOYMENTS, manager="helm", force=False)
    assert failure.value.code == 409
    assert failure.value.message == ('Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: '
                                     '.spec.replicas')
    assert failure.value.details == {"causes": [{"type": "FieldManagerConflict", "field": ".spec.replicas",
                                                 "message": 'conflict with "kubectl" using apps/v1'}]}
    # The same value is shared ownership, not a conflict; force takes the field over.
    shared = apply(live, deployment(replicas=1), DEPLOYMENTS, manager="helm", force=False)
    assert len(shared["metadata"]["managedFields"]) == 2
    taken = apply(live, deployment(replicas=3), DEPLOYMENTS, manager="helm", force=True)
    assert taken["spec"]["replicas"] == 3
    assert [e["manager"] for e in taken["metadata"]["managedFields"]] == ["helm"]


def test_custom_resource_lists_are_atomic_and_a_manager_is_required() -> None:
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "r"},
          "spec": {"hosts": ["a", "b"]}}
    live = apply(None, vs, VIRTUAL_SERVICES, manager="kubectl", force=False)
    changed = apply(live, {**vs, "spec": {"hosts": ["c"]}}, VIRTUAL_SERVICES, manager="kubectl", force=False)
    assert changed["spec"] == {"hosts": ["c"]}
    with pytest.raises(StoreError, match="fieldManager is required"):
        apply(None, vs, VIRTUAL_SERVICES, manager="", force=False)


def crd(**overrides: Any) -> dict[str, Any]:
    spec = {"group": "networking.istio.io", "scope": "Namespaced",
            "names": {"kind": "VirtualService", "plural": "virtualservices", "shortNames": ["vs"],
                      "categories": ["istio-io"]},
            "versions": [{"name": v, "served": True, "storage": v == "v1",
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True}}}
                         for v in ("v1alpha3", "v1")]}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "virtualservices.networking.istio.io"}, "spec": {**spec, **overrides}}


def test_a_crd_becomes_the_type_it_serves() -> None:
    served = crd_type(crd())
    assert (served.group, served.kind, served.plural, served.versions, served.namespaced) == (
        "networking.istio.io", "VirtualService", "virtualservices", ("v1", "v1alpha3"), True)
    assert served.short_names == ("vs",) and served.custom


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"scope": "Global"}, "spec.scope: Unsupported value"),
    ({"group": "istio.io"}, "metadata.name: Invalid value"),
    ({"versions": [{"name": "v1", "served": True, "storage": True}]}, "openAPIV3Schema.type: Required value"),
    ({"versions": [{"name": "v1", "served": True, "storage": False,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}, "exactly one version"),
])
def test_an_invalid_crd_is_refused(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidCrd, match=problem):
        crd_type(crd(**overrides))
