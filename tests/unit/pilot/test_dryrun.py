"""`/debug/dryrun`'s work, pure: proposed config laid over the live push, translated for
each connected proxy, and diffed resource by resource against what the proxy holds; the
live push, its cache and the streams untouched."""

from __future__ import annotations

import json

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import json_format

from libs.config import Resource, parse_text
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot import dryrun
from services.pilot.errors import InconsistentConfig
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import RegistryContents
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.connection import Connection
from services.pilot.xds.snapshot import EncodedResource, Snapshot, encode
from tests.unit.pilot.test_connection import decode, request

REVIEWS = "reviews.default.svc.cluster.local"

BASE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {app: reviews, version: v1}}
  - {address: 10.0.0.2, labels: {app: reviews, version: v2}}
  - {address: 10.0.0.3, labels: {app: reviews, version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
"""

FRONT_TO_V2 = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
"""

MESH_ROUTE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""

SUBSET_V3 = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""

SIDECAR = Proxy(id="sidecar~10.0.0.9~productpage.default~default.svc.cluster.local", type=NodeType.SIDECAR,
                ip="10.0.0.9", pod="productpage", namespace="default", dns_domain="default.svc.cluster.local",
                labels=(("app", "productpage"),))
GATEWAY = Proxy(id="router~10.0.0.8~ingressgateway.istio-system~istio-system.svc.cluster.local",
                type=NodeType.ROUTER, ip="10.0.0.8", pod="ingressgateway", namespace="istio-system",
                dns_domain="istio-system.svc.cluster.local", labels=(("istio", "ingressgateway"),))


def resources(text: str) -> list[Resource]:
    result = parse_text(text, "test")
    assert result.ok, result.errors()
    return [r for _, r in result.resources]


def mesh_of(config: ConfigSnapshot) -> MeshConfig:
    return mesh_from_config(config.of_kind("MeshConfig"), MeshConfig(), "istio-system")


def live_push() -> PushContext:
    config = ConfigSnapshot(7, {r.key: r for r in resources(BASE)})
    registry = RegistryContents("mesh-workloads", workloads=(
        WorkloadInstance("productpage", "default", "10.0.0.9", (("app", "productpage"),)),), version="3")
    return PushContext.build(config, mesh_of(config), registries=[registry])


def connect(proxy: Proxy, snapshot: Snapshot) -> Connection:
    """Envoy's opening sequence on a state-of-the-world stream, each response ACKed."""
    conn = Connection(proxy.pod, proxy)
    for type_url, names in ((CLUSTER_TYPE, ()), (ENDPOINT_TYPE, tuple(sorted(snapshot.eds_clusters))),
                            (LISTENER_TYPE, ()), (ROUTE_TYPE, tuple(sorted(snapshot.route_names)))):
        (response,) = decode(conn.handle_request(request(type_url, names=names), snapshot))
        assert conn.handle_request(request(type_url, nonce=response.nonce, version=response.version_info,
                                           names=names), snapshot) == []
    assert conn.in_sync()
    return conn


Live = tuple[SnapshotCache, dict[str, Connection]]


@pytest.fixture
def live() -> Live:
    cache = SnapshotCache()
    cache.set_push(live_push())
    connections = {}
    for proxy in (SIDECAR, GATEWAY):
        snapshot = cache.get(proxy)
        assert snapshot is not None
        connections[proxy.pod] = connect(proxy, snapshot)
    return cache, connections


def run(cache: SnapshotCache, connections: dict[str, Connection], proposed: str) -> dict[str, dryrun.ProxyEffect]:
    push = cache.push_context
    assert push is not None
    holdings = [dryrun.Holding.of(c, f"{c.proxy.pod}.{c.proxy.namespace}") for c in connections.values()]
    found = dryrun.effects(dryrun.proposed_push(push, resources(proposed), mesh_of), holdings,
                           current_version=push.version)
    return {effect.name: effect for effect in found}


def changed_lines(diff: str) -> list[tuple[str, str]]:
    """The removed and added lines of a unified diff, without their indentation."""
    return [(line[0], line[1:].strip()) for line in diff.splitlines()[2:] if line[:1] in "+-"]


def summary(effect: dryrun.ProxyEffect) -> list[tuple[str, str, str]]:
    return [(c.type, c.name, c.change) for c in effect.changes]


# -- the overlay ------------------------------------------------------------------------


def test_an_applied_resource_replaces_the_one_with_its_kind_namespace_and_name() -> None:
    live = live_push()
    overlaid = live.config.overlaid(resources(FRONT_TO_V2 + "---\n" + MESH_ROUTE))
    assert overlaid.revision == live.config.revision
    (front,) = [vs for vs in overlaid.of_kind("VirtualService") if vs.name == "front"]
    assert front.spec["http"][0]["route"][0]["destination"]["subset"] == "v2"
    assert sorted(vs.name for vs in overlaid.of_kind("VirtualService")) == ["front", "reviews"]
    # The live config is not touched.
    (before,) = live.config.of_kind("VirtualService")
    assert before.spec["http"][0]["route"][0]["destination"]["subset"] == "v1"
    assert len(live.config.resources) == 4


def test_the_last_of_several_resources_with_one_name_wins() -> None:
    overlaid = ConfigSnapshot(1, {}).overlaid(resources(FRONT_TO_V2 + "---\n" + FRONT_TO_V2.replace("subset: v2",
                                                                                                   "subset: v3")))
    (front,) = overlaid.of_kind("VirtualService")
    assert front.spec["http"][0]["route"][0]["destination"]["subset"] == "v3"


def test_the_proposed_push_keeps_the_registries_and_takes_a_new_mesh_config() -> None:
    live = live_push()
    mesh_config = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""
    proposed = dryrun.proposed_push(live, resources(mesh_config), mesh_of)
    assert proposed is not live and proposed.registries == live.registries
    assert [w.name for w in proposed.workloads] == ["productpage"]
    assert proposed.services.keys() == live.services.keys()
    assert proposed.mesh.outbound_traffic_policy == "REGISTRY_ONLY"
    assert live.mesh.outbound_traffic_policy == "ALLOW_ANY"
    assert proposed.version == live.version


# -- the effect on each proxy -----------------------------------------------------------


def test_a_gateway_virtual_service_change_is_a_route_diff_for_the_gateway_only(live: Live) -> None:
    cache, connections = live
    found = run(cache, connections, FRONT_TO_V2)
    assert summary(found["ingressgateway.istio-system"]) == [("routes", "http.8080", "changed")]
    assert not found["productpage.default"].changed
    (change,) = found["ingressgateway.istio-system"].changes
    lines = change.diff.splitlines()
    assert lines[:2] == ["--- ingressgateway.istio-system routes http.8080 (now)",
                         "+++ ingressgateway.istio-system routes http.8080 (after apply)"]
    assert changed_lines(change.diff) == [("-", f'"cluster": "outbound|9080|v1|{REVIEWS}",'),
                                          ("+", f'"cluster": "outbound|9080|v2|{REVIEWS}",')]


def test_a_mesh_virtual_service_changes_the_sidecars_routes_and_not_the_gateways(live: Live) -> None:
    cache, connections = live
    found = run(cache, connections, MESH_ROUTE)
    assert summary(found["productpage.default"]) == [("routes", "9080", "changed")]
    assert not found["ingressgateway.istio-system"].changed
    diff = found["productpage.default"].changes[0].diff
    assert '+                  "exact": "jason"' in diff


def test_a_new_subset_adds_its_cluster_and_load_assignment_wherever_the_service_is_seen(live: Live) -> None:
    cache, connections = live
    found = run(cache, connections, SUBSET_V3)
    v3 = f"outbound|9080|v3|{REVIEWS}"
    for name in ("productpage.default", "ingressgateway.istio-system"):
        assert summary(found[name]) == [("clusters", v3, "added"), ("endpoints", v3, "added")], name
    (cluster, endpoints) = found["productpage.default"].changes
    lines = cluster.diff.splitlines()
    assert lines[0] == f"--- productpage.default clusters {v3} (now)"
    assert lines[2].startswith("@@ -0,0 ")
    assert all(line.startswith("+") for line in lines[3:])
    assert ("+", '"address": "10.0.0.3",') in changed_lines(endpoints.diff)
    assert "10.0.0.1" not in endpoints.diff


def test_config_the_proxy_already_holds_changes_nothing(live: Live) -> None:
    cache, connections = live
    found = run(cache, connections, BASE)
    assert not any(effect.changed for effect in found.values())
    assert all(effect.unsettled == () for effect in found.values())


def test_nothing_live_is_touched(live: Live) -> None:
    cache, connections = live
    push, generation, builds = cache.push_context, cache.memo.generation, cache.builds
    held = {name: {t: (w.version_sent, w.version_acked, w.nonce, dict(w.sent), w.awaiting_ack)
                   for t, w in c.watches.items()} for name, c in connections.items()}
    run(cache, connections, SUBSET_V3 + "---\n" + MESH_ROUTE + "---\n" + FRONT_TO_V2)
    assert cache.push_context is push and cache.memo.generation == generation and cache.builds == builds
    assert {name: {t: (w.version_sent, w.version_acked, w.nonce, dict(w.sent), w.awaiting_ack)
                   for t, w in c.watches.items()} for name, c in connections.items()} == held
    # The live snapshot is still the one the proxies hold.
    assert cache.get(SIDECAR) is not None and cache.builds == builds


def test_a_proxy_out_of_step_with_pilot_says_why(live: Live) -> None:
    cache, connections = live
    # A new push reaches the gateway, which rejects its routes; the sidecar's stream has
    # not processed it yet.
    config = ConfigSnapshot(8, {r.key: r for r in resources(BASE + "---\n" + FRONT_TO_V2)})
    cache.set_push(PushContext.build(config, mesh_of(config), registries=live_push().registries))
    gateway = connections["ingressgateway"]
    snapshot = cache.get(GATEWAY)
    assert snapshot is not None
    sent = {r.type_url: r for r in decode(gateway.push(snapshot))}
    assert sent.keys() == {ROUTE_TYPE}
    gateway.handle_request(request(ROUTE_TYPE, nonce=sent[ROUTE_TYPE].nonce, version="7.3",
                                   names=tuple(gateway.watches[ROUTE_TYPE].names or ()), error="invalid route"),
                           snapshot)
    found = run(cache, connections, BASE)
    assert found["ingressgateway.istio-system"].unsettled == (
        "RDS rejected version 8.3 (invalid route): Envoy kept its previous RDS",)
    assert found["productpage.default"].unsettled == (
        "its stream has not processed pilot's current version 8.3 yet (it holds 7.3)",)
    # Pilot records what it sent, rejected or not: the gateway's diff is from the rejected routes.
    assert summary(found["ingressgateway.istio-system"]) == [("routes", "http.8080", "changed")]


def test_config_pilot_would_refuse_to_serve_is_an_error_for_that_proxy(live: Live,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache, connections = live

    def refuse(*args: object) -> None:
        raise InconsistentConfig("EDS cluster outbound|9080|v3|x has no load assignment")

    monkeypatch.setattr(dryrun, "generate", refuse)
    found = run(cache, connections, SUBSET_V3)
    assert found["productpage.default"].error == (
        "pilot would refuse to serve this config to it (EDS cluster outbound|9080|v3|x has no load assignment); "
        "it would keep what it holds")
    assert found["productpage.default"].changed


# -- the diff ---------------------------------------------------------------------------


def encoded(name: str, **fields: object) -> EncodedResource:
    return encode(name, json_format.ParseDict({"name": name, **fields}, cluster_pb2.Cluster()))


def test_the_diff_is_of_canonical_json_resource_by_resource() -> None:
    now = {"a": encoded("a", connect_timeout="1s"), "b": encoded("b"), "same": encoded("same")}
    after = {"a": encoded("a", connect_timeout="2s"), "c": encoded("c"), "same": encoded("same")}
    changes = dryrun.diff_resources("p.ns", CLUSTER_TYPE, now, after)
    assert [(c.name, c.change) for c in changes] == [("a", "changed"), ("b", "removed"), ("c", "added")]
    assert changes[0].diff.splitlines() == [
        "--- p.ns clusters a (now)", "+++ p.ns clusters a (after apply)", "@@ -1,5 +1,5 @@",
        ' {', '   "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",',
        '-  "connect_timeout": "1s",', '+  "connect_timeout": "2s",', '   "name": "a"', ' }']
    assert changes[1].diff.splitlines()[2] == "@@ -1,4 +0,0 @@"
    assert json.loads("\n".join(line[1:] for line in changes[2].diff.splitlines()[3:])) == {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "c"}
    assert dryrun.diff_resources("p.ns", CLUSTER_TYPE, now, now) == []


def test_the_answer_groups_changes_by_type() -> None:
    effect = dryrun.ProxyEffect("sidecar~1~p.ns~ns.svc.cluster.local", "p.ns", (
        dryrun.Change("clusters", "a", "added", "d1"), dryrun.Change("routes", "80", "changed", "d2")))
    assert effect.as_dict() == {
        "proxy": "sidecar~1~p.ns~ns.svc.cluster.local", "name": "p.ns", "error": None, "unsettled": [],
        "changes": {"clusters": [{"type": "clusters", "name": "a", "change": "added", "diff": "d1"}],
                    "routes": [{"type": "routes", "name": "80", "change": "changed", "diff": "d2"}]}}
