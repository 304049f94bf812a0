"""Kubernetes objects as pilot's model (services, endpoints, workloads), and the registries
merged into one view, Kubernetes winning a hostname conflict."""

from __future__ import annotations

from typing import Any

import pytest

from libs.config import parse_text
from libs.config.label_selectors import parse_selector
from services.pilot.model import kube
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import KUBERNETES, MemoryRegistry, RegistryContents, aggregate, discovered
from services.pilot.model.services import Endpoint, Protocol, Resolution, Service, ServicePort


def service(name: str = "reviews", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": ports if ports is not None else [{"name": "http", "port": 9080, "targetPort": 8080}],
                     "clusterIP": "10.96.0.7", **spec}}


def pod(name: str, ip: str, *, account: str = "bookinfo-reviews", node: str = "n1", sidecar: bool = True,
        labels: dict[str, str] | None = None, phase: str = "Running") -> dict[str, Any]:
    annotations = {"sidecar.istio.io/status": "{}"} if sidecar else {}
    return {"metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "reviews"},
                         "annotations": annotations},
            "spec": {"serviceAccountName": account, "nodeName": node,
                     "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": phase, "podIP": ip}}


def endpoints(*entries: dict[str, Any], service_name: str = "reviews",
              ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": f"{service_name}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "ports": ports if ports is not None else [{"name": "http", "port": 8080}], "endpoints": list(entries)}


def entry(ip: str, pod_name: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [ip], "conditions": conditions or {"ready": True},
            "targetRef": {"kind": "Pod", "namespace": "default", "name": pod_name}}


NODE = {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/region": "r1",
                                              "topology.kubernetes.io/zone": "z1",
                                              "topology.istio.io/subzone": "s1"}}}


def objects(**stores: dict[Any, Any]) -> kube.KubeObjects:
    return kube.KubeObjects(**stores)


@pytest.mark.parametrize(("port", "protocol"), [
    ({"name": "http", "port": 80}, Protocol.HTTP),
    ({"name": "grpc-web", "port": 80}, Protocol.GRPC_WEB),
    ({"name": "grpc-api", "port": 80}, Protocol.GRPC),
    ({"name": "http2-x", "port": 80}, Protocol.HTTP2),
    ({"name": "https", "port": 443}, Protocol.HTTPS),
    ({"name": "tls-db", "port": 443}, Protocol.TLS),
    ({"name": "mongo", "port": 27017}, Protocol.MONGO),
    ({"name": "redis", "port": 6379}, Protocol.REDIS),
    ({"name": "mysql", "port": 3306}, Protocol.MYSQL),
    ({"name": "db", "port": 5432}, Protocol.TCP),
    ({"port": 53}, Protocol.TCP),
    ({"name": "web", "port": 80, "appProtocol": "http"}, Protocol.HTTP),
    ({"name": "http", "port": 80, "appProtocol": "grpc"}, Protocol.GRPC),
    ({"name": "h2c", "port": 80, "appProtocol": "kubernetes.io/h2c"}, Protocol.HTTP2),
    ({"name": "dns", "port": 53, "protocol": "UDP"}, Protocol.UDP),
])
def test_port_protocol_app_protocol_first_then_the_name(port: dict[str, Any], protocol: Protocol) -> None:
    assert kube.port_protocol(port) == protocol


def test_a_service_is_its_cluster_name_with_its_vip() -> None:
    found = kube.service_of(service(), "cluster.local")
    assert found == Service("reviews.default.svc.cluster.local", "default",
                            (ServicePort("http", 9080, Protocol.HTTP, 8080),), Resolution.STATIC, ("10.96.0.7",),
                            source="Kubernetes Service default/reviews")


def test_headless_and_external_name_services() -> None:
    headless = kube.service_of(service(clusterIP="None"), "cluster.local")
    assert headless.addresses == () and headless.resolution == Resolution.STATIC
    external = kube.service_of(service(type="ExternalName", externalName="db.example.com", clusterIP=""),
                               "cluster.local")
    assert (external.resolution, external.mesh_external) == (Resolution.DNS, True)
    contents = kube.contents(objects(services={("default", "reviews"): service(
        type="ExternalName", externalName="db.example.com", clusterIP="")}), "cluster.local")
    assert contents.endpoints[("reviews.default.svc.cluster.local", 9080)] == (Endpoint("db.example.com", 9080),)


def test_endpoints_carry_the_pod_identity_labels_and_node_locality() -> None:
    contents = kube.contents(objects(
        services={("default", "reviews"): service()},
        slices={("default", "reviews-x"): endpoints(entry("10.1.0.5", "reviews-v1"))},
        pods={("default", "reviews-v1"): pod("reviews-v1", "10.1.0.5", labels={"app": "reviews", "version": "v1"})},
        nodes={"n1": NODE}), "cluster.local", "v7")
    assert contents.name == KUBERNETES and contents.version == "v7"
    [found] = contents.endpoints[("reviews.default.svc.cluster.local", 9080)]
    assert found == Endpoint("10.1.0.5", 8080, (("app", "reviews"), ("version", "v1")), "r1/z1/s1",
                             service_account="bookinfo-reviews", tls_mode="istio", workload="reviews-v1")


def test_ready_serving_and_terminating_endpoints() -> None:
    contents = kube.contents(objects(
        services={("default", "reviews"): service()},
        slices={("default", "reviews-x"): endpoints(
            entry("10.1.0.1", "a"), entry("10.1.0.2", "b", ready=False),
            entry("10.1.0.3", "c", ready=False, serving=True, terminating=True))}), "cluster.local")
    found = contents.endpoints[("reviews.default.svc.cluster.local", 9080)]
    # Not ready: left out; terminating but serving: kept unhealthy, so Envoy drains it.
    assert [(e.address, e.healthy) for e in found] == [("10.1.0.1", True), ("10.1.0.3", False)]
    # Without its pod, an endpoint has no identity and no sidecar: plain text.
    assert found[0].service_account == "" and found[0].tls_mode == ""


def test_a_slice_port_is_matched_by_name_so_named_target_ports_resolve_per_pod() -> None:
    svc = service(ports=[{"name": "http", "port": 9080, "targetPort": "web"}, {"name": "metrics", "port": 9090}])
    contents = kube.contents(objects(
        services={("default", "reviews"): svc},
        slices={("default", "reviews-x"): endpoints(entry("10.1.0.1", "a"),
                                                    ports=[{"name": "http", "port": 8081}])}), "cluster.local")
    assert [e.port for e in contents.endpoints[("reviews.default.svc.cluster.local", 9080)]] == [8081]
    assert ("reviews.default.svc.cluster.local", 9090) not in contents.endpoints


def test_slices_of_unknown_services_are_ignored() -> None:
    contents = kube.contents(objects(slices={("default", "x"): endpoints(entry("10.1.0.1", "a"),
                                                                         service_name="gone")}), "cluster.local")
    assert contents.services == {} and contents.endpoints == {}


def test_running_pods_are_workloads() -> None:
    contents = kube.contents(objects(pods={
        ("default", "a"): pod("a", "10.1.0.1"), ("default", "b"): pod("b", "", phase="Pending"),
        ("default", "c"): pod("c", "10.1.0.3", phase="Succeeded")}, nodes={"n1": NODE}), "cluster.local")
    [workload] = contents.workloads
    assert (workload.name, workload.address, workload.service_account, workload.locality, workload.sidecar,
            workload.ports) == ("a", "10.1.0.1", "bookinfo-reviews", "r1/z1/s1", True, (("http", 8080),))


SERVICE_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local, extra.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
"""


def test_kubernetes_wins_a_hostname_and_service_entries_select_pods() -> None:
    entries = [r for _, r in parse_text(SERVICE_ENTRY, "se").resources]
    registry = kube.contents(objects(
        services={("default", "reviews"): service()},
        slices={("default", "reviews-x"): endpoints(entry("10.1.0.5", "reviews-v1"))},
        pods={("default", "reviews-v1"): pod("reviews-v1", "10.1.0.5")}), "cluster.local")
    merged = aggregate(entries, [], [registry])
    assert merged.services["reviews.default.svc.cluster.local"].source == "Kubernetes Service default/reviews"
    assert [e.port for e in merged.endpoints[("reviews.default.svc.cluster.local", 9080)]] == [8080]
    # The ServiceEntry's other host selects the pod, on its container port of the same name.
    assert [(e.address, e.port) for e in merged.endpoints[("extra.example.com", 9080)]] == [("10.1.0.5", 8080)]


def test_a_push_merges_every_registry_and_versions_them() -> None:
    memory = MemoryRegistry("memory", services={"a.example": Service("a.example", "default",
                                                                     (ServicePort("http", 80, Protocol.HTTP),))},
                            endpoints={("a.example", 80): (Endpoint("10.0.0.1", 80),)})
    other = RegistryContents("other", version="abc")
    push = PushContext.build(ConfigSnapshot(3, {}), MeshConfig(), registries=[memory.contents(), other])
    assert push.endpoints[("a.example", 80)] == (Endpoint("10.0.0.1", 80),)
    assert push.version.startswith("3.") and push.version.endswith(".abc")


def test_discovery_selectors_keep_only_selected_namespaces() -> None:
    contents = kube.contents(objects(
        services={("default", "reviews"): service(), ("shop", "reviews"): {**service(), "metadata": {
            "name": "reviews", "namespace": "shop"}}},
        pods={("shop", "reviews-v1"): {**pod("reviews-v1", "10.1.0.6"), "metadata": {
            "name": "reviews-v1", "namespace": "shop"}}},
        namespaces={"shop": {"metadata": {"name": "shop", "labels": {"team": "blue"}}}}), "cluster.local")
    assert contents.namespaces == {"shop": {"team": "blue"}}
    by_team = discovered(contents, [parse_selector({"matchExpressions": [
        {"key": "team", "operator": "In", "values": ["blue"]}]}, "s")])
    assert sorted(by_team.services) == ["reviews.shop.svc.cluster.local"]
    assert [w.namespace for w in by_team.workloads] == ["shop"]
    assert all(host == "reviews.shop.svc.cluster.local" for host, _ in by_team.endpoints)
    # An empty selector selects every namespace, as in Kubernetes; no selectors, no filter.
    assert discovered(contents, [parse_selector({}, "s")]).services.keys() == contents.services.keys()
    assert discovered(contents, []) is contents
    # A registry that knows no namespaces is not filtered.
    assert discovered(MemoryRegistry(services={"a": contents.services["reviews.shop.svc.cluster.local"]}).contents(),
                      [parse_selector({"matchLabels": {"x": "y"}}, "s")]).services.keys() == {"a"}
