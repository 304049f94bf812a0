"""The fake API server's PATCH bodies, as a real server applies them (the cases kubectl produces)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.kube_patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
    json_patch,
    merge_patch,
)
from tests.harness.kube_resources import CORE_TYPES, ISTIO_TYPES
from tests.harness.kube_store import StoreError

PODS = next(t for t in CORE_TYPES if t.plural == "pods")
SERVICES = next(t for t in CORE_TYPES if t.plural == "services")
VIRTUAL_SERVICES = next(t for t in ISTIO_TYPES if t.plural == "virtualservices")


def pod(*containers: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **metadata},
            "spec": {"containers": list(containers)}}


def smp(obj: dict[str, Any], patch: dict[str, Any], rtype: Any = PODS) -> dict[str, Any]:
    return apply_patch(STRATEGIC_MERGE_PATCH, obj, patch, rtype)


def test_merge_patch_is_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": None, "y": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"y": 1}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}  # not modified


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a/b": "1"}}, "list": [1, 2, 3]}
    patched = json_patch(doc, [
        {"op": "add", "path": "/list/-", "value": 4}, {"op": "remove", "path": "/list/0"},
        {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
        {"op": "copy", "from": "/list/0", "path": "/first"}, {"op": "move", "from": "/first", "path": "/moved"},
        {"op": "test", "path": "/moved", "value": 2}])
    assert patched == {"metadata": {"labels": {"a/b": "2"}}, "list": [2, 3, 4], "moved": 2}
    assert doc["list"] == [1, 2, 3]


@pytest.mark.parametrize("operation", [
    {"op": "test", "path": "/a", "value": 2}, {"op": "remove", "path": "/missing"},
    {"op": "add", "path": "/list/9", "value": 1}, {"op": "frobnicate", "path": "/a"}])
def test_a_json_patch_that_does_not_apply_is_invalid(operation: dict[str, Any]) -> None:
    with pytest.raises(StoreError) as raised:
        json_patch({"a": 1, "list": []}, [operation])
    assert (raised.value.code, raised.value.reason) == (422, "Invalid")
    assert raised.value.details is not None and raised.value.details["causes"][0]["message"]


def test_strategic_merge_merges_lists_by_their_key() -> None:
    live = pod({"name": "app", "image": "a:1", "ports": [{"containerPort": 80}], "env": [{"name": "X", "value": "1"}]},
               {"name": "sidecar", "image": "s:1"})
    patched = smp(live, {"spec": {"containers": [
        {"name": "app", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}, {"name": "new", "image": "n:1"}]}})
    assert patched["spec"]["containers"] == [
        {"name": "app", "image": "a:2", "ports": [{"containerPort": 80}],
         "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        {"name": "sidecar", "image": "s:1"}, {"name": "new", "image": "n:1"}]


def test_strategic_merge_directives_from_client_side_apply() -> None:
    live = pod({"name": "a", "image": "a", "ports": [{"containerPort": 80}, {"containerPort": 90}]},
               {"name": "b", "image": "b"}, {"name": "injected", "image": "i"},
               labels={"keep": "1", "drop": "1"}, finalizers=["x", "y"])
    patched = smp(live, {
        "metadata": {"labels": {"drop": None}, "$deleteFromPrimitiveList/finalizers": ["x"], "finalizers": ["z"]},
        "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                 "containers": [{"name": "a", "$setElementOrder/ports": [{"containerPort": 80}],
                                 "ports": [{"containerPort": 90, "$patch": "delete"}]}]}})
    assert patched["metadata"]["labels"] == {"keep": "1"}
    assert patched["metadata"]["finalizers"] == ["y", "z"]
    # The patch's order for its own items; the server's own ("injected") keeps its place.
    assert [c["name"] for c in patched["spec"]["containers"]] == ["b", "a", "injected"]
    assert patched["spec"]["containers"][1]["ports"] == [{"containerPort": 80}]


def test_strategic_merge_replace_and_retain_keys() -> None:
    live = pod({"name": "a", "image": "a"}) | {"spec": {"containers": [{"name": "a"}],
                                                        "volumes": [{"name": "v", "emptyDir": {}}]}}
    patched = smp(live, {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "secret"],
                                               "secret": {"secretName": "s"}}],
                                  "containers": [{"$patch": "replace"}, {"name": "only"}]}})
    assert patched["spec"]["volumes"] == [{"name": "v", "secret": {"secretName": "s"}}]
    assert patched["spec"]["containers"] == [{"name": "only"}]


def test_lists_without_a_strategy_are_replaced() -> None:
    live = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [], "tolerations": [{"key": "a"}, {"key": "b"}]}}
    assert smp(live, {"spec": {"tolerations": [{"key": "c"}]}})["spec"]["tolerations"] == [{"key": "c"}]


def test_service_ports_merge_by_port() -> None:
    live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    patched = smp(live, {"spec": {"ports": [{"port": 443, "name": "tls"}]}}, SERVICES)
    assert patched["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}]


def test_a_merge_key_is_required() -> None:
    with pytest.raises(StoreError, match="does not contain declared merge key: name") as raised:
        smp(pod({"name": "a"}), {"spec": {"containers": [{"image": "x"}]}})
    assert raised.value.code == 400


def test_custom_resources_take_no_strategic_merge() -> None:
    with pytest.raises(StoreError) as raised:
        smp({"spec": {}}, {"spec": {"hosts": ["a"]}}, VIRTUAL_SERVICES)
    assert (raised.value.code, raised.value.reason) == (415, "UnsupportedMediaType")
    assert apply_patch(MERGE_PATCH, {"spec": {"hosts": ["a"]}}, {"spec": {"hosts": ["b"]}}, VIRTUAL_SERVICES) == {
        "spec": {"hosts": ["b"]}}
    assert apply_patch(JSON_PATCH, {"spec": {}}, [{"op": "add", "path": "/spec/x", "value": 1}],
                       VIRTUAL_SERVICES) == {"spec": {"x": 1}}
