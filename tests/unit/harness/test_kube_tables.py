"""Server-side printing, discovery and field selectors of the fake API server, as kubectl reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.harness.kube_discovery import aggregated_discovery, api_resource_list, openapi_v2
from tests.harness.kube_resources import (
    CORE_TYPES,
    ISTIO_TYPES,
    FieldSelectorError,
    default_types,
    parse_field_selector,
)
from tests.harness.kube_tables import human_duration, table

TYPES = {t.plural: t for t in (*CORE_TYPES, *ISTIO_TYPES)}


def cells(plural: str, obj: dict[str, Any], api_version: str = "v1") -> list[Any]:
    answer = table(TYPES[plural], api_version, [obj], resource_version="7")
    return list(answer["rows"][0]["cells"])


def ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (0, "0s"), (119, "119s"), (200, "3m20s"), (600, "10m"), (3 * 3600 + 600, "3h10m"),
    (20 * 3600, "20h"), (3 * 86400 + 7200, "3d2h"), (40 * 86400, "40d"), (3 * 365 * 86400 + 86400, "3y1d")])
def test_ages_as_kubectl_prints_them(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_a_table_of_services_with_wide_columns_and_partial_objects() -> None:
    service = {"metadata": {"name": "reviews", "namespace": "shop", "creationTimestamp": ago(30)},
               "spec": {"clusterIP": "10.0.0.5", "selector": {"b": "2", "a": "1"},
                        "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "nodePort": 30053}]}}
    answer = table(TYPES["services"], "v1", [service], resource_version="7")
    assert answer["kind"] == "Table" and answer["apiVersion"] == "meta.k8s.io/v1"
    assert answer["metadata"] == {"resourceVersion": "7"}
    assert [(c["name"], c["priority"]) for c in answer["columnDefinitions"]] == [
        ("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)]
    row = answer["rows"][0]
    assert row["cells"] == ["reviews", "ClusterIP", "10.0.0.5", "<none>", "80/TCP,53:30053/UDP", "30s", "a=1,b=2"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": service["metadata"]}
    assert table(TYPES["services"], "v1", [service], resource_version="7", headers=False,
                 include_object="None")["columnDefinitions"] is None


def test_service_types() -> None:
    assert cells("services", {"metadata": {"name": "x"}, "spec": {"type": "ExternalName",
                                                                  "externalName": "a.example"}})[1:5] == [
        "ExternalName", "<none>", "a.example", "<none>"]
    assert cells("services", {"metadata": {"name": "x"}, "spec": {"type": "LoadBalancer"}})[3] == "<pending>"
    assert cells("services", {"metadata": {"name": "x"}, "spec": {"clusterIP": "None"}})[2] == "None"


def test_pods_ready_status_restarts() -> None:
    running = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
               "status": {"phase": "Running", "podIP": "10.1.0.4",
                          "containerStatuses": [{"name": "a", "ready": True, "restartCount": 2,
                                                 "state": {"running": {}}},
                                                {"name": "b", "ready": False, "restartCount": 0,
                                                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert cells("pods", running)[1:4] == ["1/2", "CrashLoopBackOff", "2"]
    assert cells("pods", running)[5] == "10.1.0.4"
    init = {"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"running": {}}}]}}
    assert cells("pods", init)[2] == "Init:0/1"
    deleting = {"metadata": {"name": "p", "deletionTimestamp": ago(1)}, "spec": {"containers": []},
                "status": {"phase": "Running"}}
    assert cells("pods", deleting)[2] == "Terminating"


def test_endpoint_slices_list_three_then_more() -> None:
    eps = {"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "http"}],
           "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    assert cells("endpointslices", eps)[1:4] == ["IPv4", "80,http", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]
    assert cells("endpointslices", {"metadata": {"name": "s"}, "addressType": "IPv4"})[2:4] == ["<unset>", "<unset>"]


def test_crd_printer_columns() -> None:
    vs = {"metadata": {"name": "r", "creationTimestamp": ago(5)}, "spec": {"hosts": ["a", "b"]}}
    assert cells("virtualservices", vs, "networking.istio.io/v1") == ["r", None, '["a","b"]', "5s"]
    full = table(TYPES["virtualservices"], "networking.istio.io/v1", [vs], resource_version="1",
                 include_object="Object")
    assert full["rows"][0]["object"]["apiVersion"] == "networking.istio.io/v1"
    assert [c["name"] for c in full["columnDefinitions"]] == ["Name", "Gateways", "Hosts", "Age"]
    assert cells("peerauthentications", {"metadata": {"name": "p"}, "spec": {"mtls": {"mode": "STRICT"}}},
                 "security.istio.io/v1")[1] == "STRICT"


def test_resource_lists_for_discovery() -> None:
    core = api_resource_list(default_types(), "", "v1")
    assert core is not None and core["groupVersion"] == "v1"
    services = next(r for r in core["resources"] if r["name"] == "services")
    assert services | {"verbs": None} == {"name": "services", "singularName": "service", "namespaced": True,
                                          "kind": "Service", "verbs": None, "shortNames": ["svc"],
                                          "categories": ["all"]}
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(services["verbs"])
    istio = api_resource_list(default_types(), "networking.istio.io", "v1alpha3")
    assert istio is not None and {"vs", "dr", "se", "gw"} <= {s for r in istio["resources"]
                                                              for s in r.get("shortNames", [])}
    assert api_resource_list(default_types(), "networking.istio.io", "v9") is None

    aggregated = aggregated_discovery(default_types(), core=False, version="v2")
    networking = next(g for g in aggregated["items"] if g["metadata"]["name"] == "networking.istio.io")
    assert [v["version"] for v in networking["versions"]] == ["v1", "v1beta1", "v1alpha3"]
    assert all(r["scope"] == "Namespaced" for r in networking["versions"][0]["resources"])


def test_openapi_v2_is_an_empty_but_valid_document() -> None:
    # gnostic's Document: swagger (1), info {title (1), version (2)} (2), paths (8), definitions (9).
    assert openapi_v2("v1.30.0", protobuf=True) == (b"\n\x032.0\x12\x15\n\nKubernetes\x12\x07v1.30.0"
                                                    b"B\x00J\x00")


def test_field_selectors() -> None:
    selector = parse_field_selector("metadata.name=p,status.phase!=Running,spec.hostNetwork=false", TYPES["pods"])
    assert selector({"metadata": {"name": "p"}, "status": {"phase": "Pending"}, "spec": {}})
    assert not selector({"metadata": {"name": "p"}, "status": {"phase": "Running"}})
    assert not selector({"metadata": {"name": "p"}, "spec": {"hostNetwork": True}})
    assert parse_field_selector("metadata.namespace==shop", TYPES["virtualservices"])({"metadata": {
        "namespace": "shop"}})
    with pytest.raises(FieldSelectorError, match=r"field label not supported: spec\.hosts"):
        parse_field_selector("spec.hosts=a", TYPES["virtualservices"])
