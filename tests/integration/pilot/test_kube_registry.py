"""Pilot's Kubernetes registry against the fake API server, judged by real Envoys: a mesh
defined only by Kubernetes objects (Services, EndpointSlices, Pods, Nodes; no
ServiceEntry), traffic to the pods' addresses (loopback addresses stand in for pod IPs)
over mTLS with the identities the pods' service accounts give, changes followed, and a
relist after 410 Gone losing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.citadel import identity_sidecar, start_citadel
from tests.harness.config_env import ConfigEnv
from tests.harness.http import via_http_proxy
from tests.harness.kube_apiserver import FakeKubeApiServer
from tests.harness.kube_store import StoreError
from tests.harness.mesh import Mesh, Proxy
from tests.harness.nats import start_nats
from tests.harness.processes import ProcessGroup
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

CLIENT_IP, REVIEWS_V1_IP, REVIEWS_V2_IP = "127.0.46.1", "127.0.46.2", "127.0.46.3"
APP_PORT = 19080


def service(name: str, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": list(ports), "selector": {"app": name}, "clusterIP": spec.pop("clusterIP", "10.96.0.10"),
                     **spec}}


def pod(name: str, ip: str, account: str, labels: dict[str, str], *, node: str = "node-a") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels,
                         "annotations": {"sidecar.istio.io/status": '{"containers":["istio-proxy"]}'}},
            "spec": {"serviceAccountName": account, "nodeName": node,
                     "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": APP_PORT}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def endpoint_slice(name: str, service_name: str, *endpoints: tuple[str, str, bool], port_name: str = "http"
                   ) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": 9080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}, "nodeName": "node-a",
                           "targetRef": {"kind": "Pod", "namespace": "default", "name": pod_name}}
                          for ip, pod_name, ready in endpoints]}


NODE = {"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/region": "eu-west1",
                                                  "topology.kubernetes.io/zone": "eu-west1-b"}}}


@dataclass
class World:
    config: ConfigEnv
    kube: FakeKubeApiServer
    client: Proxy
    apps: dict[str, EchoServer]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("kube-registry")
    for folder in ("logs", "mesh", "config"):
        (base / folder).mkdir()
    group = ProcessGroup(base / "logs")
    apps = {name: EchoServer(name, ip, APP_PORT).start()
            for name, ip in (("reviews-v1", REVIEWS_V1_IP), ("reviews-v2", REVIEWS_V2_IP))}
    with FakeKubeApiServer() as kube:
        try:
            kube.create(NODE)
            kube.create(service("reviews", {"name": "http", "port": 9080, "targetPort": "http"}))
            kube.create(pod("reviews-v1-abc", REVIEWS_V1_IP, "bookinfo-reviews", {"app": "reviews", "version": "v1"}))
            kube.create(pod("productpage-v1-xyz", CLIENT_IP, "bookinfo-productpage", {"app": "productpage"}))
            kube.create(endpoint_slice("reviews-1", "reviews", (REVIEWS_V1_IP, "reviews-v1-abc", True)))
            kubeconfig = kube.write_kubeconfig(base / "kubeconfig")
            nats = start_nats(group, base / "nats")
            mesh = Mesh(group, nats, base / "mesh")
            citadel = start_citadel(group, nats.url, base / "citadel")
            env = ConfigEnv.start(mesh, base / "config",
                                  pilot_args=("--registries", "kubernetes", "--kube-config", str(kubeconfig)))

            def sidecar(name: str, ip: str, account: str, labels: dict[str, str], **kwargs: Any) -> Proxy:
                return env.add_proxy(identity_sidecar(mesh, env.pilot, citadel, base, name, ip, account,
                                                      labels=labels, **kwargs))

            client = sidecar("productpage-v1-xyz", CLIENT_IP, "bookinfo-productpage", {"app": "productpage"})
            for name, ip, version in (("reviews-v1-abc", REVIEWS_V1_IP, "v1"), ("reviews-v2-def", REVIEWS_V2_IP, "v2")):
                sidecar(name, ip, "bookinfo-reviews", {"app": "reviews", "version": version},
                        app_ports={9080: APP_PORT})
            yield World(env, kube, client, apps)
        finally:
            for app in apps.values():
                app.stop()
            group.stop_all()


def get(world: World, url: str = "http://reviews.default.svc.cluster.local:9080/") -> httpx.Response:
    return via_http_proxy(f"{CLIENT_IP}:15001").get(url)


def backends(world: World, requests: int = 8) -> set[str]:
    """Which reviews pods answered `requests` calls through the client's sidecar."""
    found = set()
    for _ in range(requests):
        answer = get(world)
        assert answer.status_code == 200, answer.text
        found.add(answer.json()["name"])
    return found


def replace(kube: FakeKubeApiServer, obj: dict[str, Any]) -> None:
    """Create or change an object as the API would: watchers see ADDED or MODIFIED."""
    group = obj["apiVersion"].rpartition("/")[0]
    rtype = next(t for t in kube.store.types.values() if (t.group, t.kind) == (group, obj["kind"]))
    key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    try:
        kube.store.replace(rtype, key, obj)
    except StoreError:
        kube.store.create(rtype, key, obj)


def delete(kube: FakeKubeApiServer, group: str, plural: str, name: str) -> None:
    kube.store.delete(kube.store.types[(group, plural)], ("default", name))


def localities(world: World, cluster: str) -> list[dict[str, Any]]:
    """The client's Envoy's localities (each with its lb_endpoints) for `cluster`."""
    for config in world.client.admin.config_dump()["configs"]:
        for entry in config.get("dynamic_endpoint_configs", []):
            if entry["endpoint_config"]["cluster_name"] == cluster:
                return list(entry["endpoint_config"].get("endpoints", []))
    return []


def endpoints_of(world: World, cluster: str) -> list[dict[str, Any]]:
    return [lb for locality in localities(world, cluster) for lb in locality.get("lb_endpoints", [])]


def test_a_mesh_of_kubernetes_objects_only_routes_over_mtls_with_the_pods_identities(world: World) -> None:
    answer = get(world)
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "reviews-v1"
    # The client's sidecar verified reviews' certificate against the pod's service account, and
    # reviews' sidecar passed on the client's identity.
    xfcc = answer.json()["headers"].get("x-forwarded-client-cert", "")
    assert "By=spiffe://cluster.local/ns/default/sa/bookinfo-reviews" in xfcc
    assert "URI=spiffe://cluster.local/ns/default/sa/bookinfo-productpage" in xfcc
    # The node's topology labels give the endpoint its locality.
    found = [locality.get("locality", {})
             for locality in localities(world, "outbound|9080||reviews.default.svc.cluster.local")]
    assert {"region": "eu-west1", "zone": "eu-west1-b"} in found


def test_endpoints_follow_slices_and_pods(world: World) -> None:
    kube = world.kube
    replace(kube, pod("reviews-v2-def", REVIEWS_V2_IP, "bookinfo-reviews", {"app": "reviews", "version": "v2"}))
    kube.create(endpoint_slice("reviews-2", "reviews", (REVIEWS_V2_IP, "reviews-v2-def", False)))
    world.config.sync()
    # Not ready yet: no traffic for it.
    assert backends(world) == {"reviews-v1"}
    replace(kube, endpoint_slice("reviews-2", "reviews", (REVIEWS_V2_IP, "reviews-v2-def", True)))
    world.config.sync()
    assert backends(world, 12) == {"reviews-v1", "reviews-v2"}
    delete(kube, "discovery.k8s.io", "endpointslices", "reviews-2")
    world.config.sync()
    assert backends(world) == {"reviews-v1"}


def test_a_pod_whose_account_is_not_the_sidecars_is_refused(world: World) -> None:
    """The identity the client checks comes from Kubernetes: a pod claiming another account
    than its sidecar's certificate holds fails the handshake."""
    replace(world.kube, pod("reviews-v1-abc", REVIEWS_V1_IP, "someone-else", {"app": "reviews", "version": "v1"}))
    world.config.sync()
    try:
        assert get(world).status_code == 503
    finally:
        replace(world.kube, pod("reviews-v1-abc", REVIEWS_V1_IP, "bookinfo-reviews", {"app": "reviews",
                                                                                     "version": "v1"}))
        world.config.sync()
    assert get(world).status_code == 200


def test_services_come_and_go_with_routes(world: World) -> None:
    kube = world.kube
    kube.create(service("ratings", {"name": "http-api", "port": 9080}))
    replace(kube, pod("reviews-v2-def", REVIEWS_V2_IP, "bookinfo-reviews", {"app": "reviews", "version": "v2"}))
    kube.create(endpoint_slice("ratings-1", "ratings", (REVIEWS_V2_IP, "reviews-v2-def", True), port_name="http-api"))
    world.config.sync()
    assert get(world, "http://ratings.default.svc.cluster.local:9080/").status_code == 200
    delete(kube, "", "services", "ratings")
    world.config.sync()
    wait_until(lambda: "outbound|9080||ratings.default.svc.cluster.local" not in {
        c["cluster"]["name"] for config in world.client.admin.config_dump()["configs"]
        for c in config.get("dynamic_active_clusters", [])}, timeout=15, what="the ratings cluster to go")


def clusters(world: World) -> set[str]:
    return {c["cluster"]["name"] for config in world.client.admin.config_dump()["configs"]
            for c in config.get("dynamic_active_clusters", [])}


def test_a_relist_after_410_loses_nothing(world: World) -> None:
    kube = world.kube
    kube.create(service("details", {"name": "http", "port": 9080}))
    world.config.sync()
    assert "outbound|9080||details.default.svc.cluster.local" in clusters(world)
    lists_before = len(kube.list_requests("endpointslices"))
    with kube.hold_watches():
        # Pilot's watches end and see nothing: a slice added and a Service deleted meanwhile,
        # and the history compacted, so the watches' next resourceVersion is Gone.
        replace(kube, pod("reviews-v2-def", REVIEWS_V2_IP, "bookinfo-reviews", {"app": "reviews", "version": "v2"}))
        kube.create(endpoint_slice("reviews-3", "reviews", (REVIEWS_V2_IP, "reviews-v2-def", True)))
        delete(kube, "", "services", "details")
        kube.expire_history()
    wait_until(lambda: len(endpoints_of(world, "outbound|9080||reviews.default.svc.cluster.local")) == 2,
               timeout=20, what="the relisted slice's endpoint in the client's Envoy")
    wait_until(lambda: "outbound|9080||details.default.svc.cluster.local" not in clusters(world), timeout=20,
               what="the Service deleted during the gap to go")
    assert len(kube.list_requests("endpointslices")) > lists_before, "pilot listed again"
    world.config.sync()
    assert backends(world, 12) == {"reviews-v1", "reviews-v2"}
    delete(kube, "discovery.k8s.io", "endpointslices", "reviews-3")
    world.config.sync()
    wait_until(lambda: len(endpoints_of(world, "outbound|9080||reviews.default.svc.cluster.local")) == 1,
               timeout=20, what="the deleted slice's endpoint to go")


def test_a_service_change_and_a_pod_deletion_reach_envoy(world: World) -> None:
    kube = world.kube
    # A Service gains a port: its cluster appears.
    ports = [{"name": "http", "port": 9080, "targetPort": "http"}, {"name": "grpc-admin", "port": 9081}]
    replace(kube, service("reviews", *ports))
    world.config.sync()
    assert "outbound|9081||reviews.default.svc.cluster.local" in clusters(world)
    replace(kube, service("reviews", ports[0]))
    world.config.sync()
    assert "outbound|9081||reviews.default.svc.cluster.local" not in clusters(world)
    # A ServiceEntry selects pods as workloads: deleting the pod takes its endpoint away.
    replace(kube, pod("reviews-v2-def", REVIEWS_V2_IP, "bookinfo-reviews", {"app": "reviews", "version": "v2"}))
    world.config.apply("v2-entry", """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-v2-only, namespace: default}
spec:
  hosts: [reviews-v2.example.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 19080}]
  workloadSelector: {labels: {version: v2}}
""")
    cluster = "outbound|9080||reviews-v2.example.internal"
    try:
        assert [e["endpoint"]["address"]["socket_address"]["address"] for e in endpoints_of(world, cluster)] == \
            [REVIEWS_V2_IP]
        delete(kube, "", "pods", "reviews-v2-def")
        world.config.sync()
        wait_until(lambda: endpoints_of(world, cluster) == [], timeout=20, what="the deleted pod's endpoint to go")
    finally:
        world.config.remove("v2-entry")


def test_discovery_selectors_choose_namespaces_by_their_labels(world: World) -> None:
    kube = world.kube
    reviews = "outbound|9080||reviews.default.svc.cluster.local"
    replace(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {}}})
    world.config.apply("mesh", """\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    discoverySelectors:
    - matchLabels: {mesh: "on"}
    - matchExpressions: [{key: team, operator: In, values: [blue, green]}]
""")
    try:
        wait_until(lambda: reviews not in clusters(world), timeout=20, what="an unselected namespace's services to go")
        replace(kube, {"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "default", "labels": {"team": "green"}}})
        world.config.sync()
        wait_until(lambda: reviews in clusters(world), timeout=20, what="the namespace, now selected, to come back")
        assert get(world).status_code == 200
    finally:
        world.config.remove("mesh")
    assert reviews in clusters(world)
