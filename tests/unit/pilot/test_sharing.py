"""What proxies share at scale, pure: sidecars alike in what their outbound config reads
get the same generated part (one build, one encoding), and the per-push indexes give the
same answers a scan would."""

from __future__ import annotations

import random
from dataclasses import replace

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from libs.config import parse_text
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.instances import service_instances
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.registry import RegistryContents
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.networking import generator
from services.pilot.networking.memo import TranslationMemo
from services.pilot.xds.cache import SnapshotCache
from services.pilot.xds.connection import Connection
from services.pilot.xds.snapshot import EncodedResource, Snapshot
from tests.unit.config.test_mesh_config import configmap

SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews, tier: backend}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
"""

SOURCE_LABELS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {app: reviews}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: ratings}}]
"""


def workload(name: str, address: str, **labels: str) -> WorkloadInstance:
    return WorkloadInstance(name=name, namespace="default", address=address,
                            labels=tuple(sorted(labels.items())), sidecar=True)


WORKLOADS = (
    workload("reviews-1", "10.0.0.1", app="reviews", tier="backend"),
    workload("reviews-2", "10.0.0.2", app="reviews", tier="frontend"),
    workload("ratings-1", "10.0.0.3", app="ratings"),
    workload("other", "10.0.0.4", app="reviews", tier="backend", extra="x"),
)


def push_of(*documents: str) -> PushContext:
    result = parse_text("---\n".join([SERVICES, *documents]), "test")
    assert result.ok, result.errors()
    return PushContext.build(ConfigSnapshot(1, {r.key: r for _, r in result.resources}), MeshConfig(),
                             workloads=WORKLOADS)


def sidecar(ip: str, namespace: str = "default", **labels: str) -> Proxy:
    return Proxy(id=f"sidecar~{ip}~pod.{namespace}~{namespace}.svc.cluster.local", type=NodeType.SIDECAR, ip=ip,
                 pod="pod", namespace=namespace, dns_domain=f"{namespace}.svc.cluster.local",
                 labels=tuple(sorted(labels.items())))


def outbound_route(config: generator.ProxyConfig, name: str) -> route_pb2.RouteConfiguration:
    for part in config.parts[ROUTE_TYPE]:
        if name in part:
            route = part[name]
            assert isinstance(route, route_pb2.RouteConfiguration)
            return route
    raise AssertionError(f"no route configuration {name}")


def has_fault(route: route_pb2.RouteConfiguration, host: str) -> bool:
    vhost = next(v for v in route.virtual_hosts if host in v.domains)
    return any("envoy.filters.http.fault" in r.typed_per_filter_config for r in vhost.routes)


def test_sidecars_with_different_labels_share_outbound_config_when_nothing_reads_their_labels() -> None:
    push, memo = push_of(), TranslationMemo()
    first = generator.generate(sidecar("10.0.0.1", app="reviews", tier="backend"), push, memo)
    second = generator.generate(sidecar("10.0.0.3", app="ratings"), push, memo)
    # The outbound listeners and routes are the very same generated part.
    assert first.parts[ROUTE_TYPE][0] is second.parts[ROUTE_TYPE][0]
    assert any(a is b for a in first.parts[LISTENER_TYPE] for b in second.parts[LISTENER_TYPE])


def test_source_labels_split_sharing_by_whether_a_sidecar_matches() -> None:
    push, memo = push_of(SOURCE_LABELS), TranslationMemo()
    reviews = generator.generate(sidecar("10.0.0.1", app="reviews", tier="backend"), push, memo)
    reviews_too = generator.generate(sidecar("10.0.0.2", app="reviews", tier="frontend"), push, memo)
    ratings = generator.generate(sidecar("10.0.0.3", app="ratings"), push, memo)
    assert has_fault(outbound_route(reviews, "9080"), "ratings")
    assert not has_fault(outbound_route(ratings, "9080"), "ratings")
    # Both reviews sidecars match the same sourceLabels: one part between them.
    assert reviews.parts[ROUTE_TYPE][0] is reviews_too.parts[ROUTE_TYPE][0]
    assert reviews.parts[ROUTE_TYPE][0] is not ratings.parts[ROUTE_TYPE][0]


def test_workload_selectors_pick_every_label_and_only_their_namespace() -> None:
    push = push_of()
    reviews = {e.address for e in push.endpoints[("reviews.default.svc.cluster.local", 9080)]}
    assert reviews == {"10.0.0.1", "10.0.0.4"}
    assert {e.address for e in push.endpoints[("ratings.default.svc.cluster.local", 9080)]} == {"10.0.0.3"}


def test_service_instances_are_found_by_the_proxy_address() -> None:
    push = push_of()
    instances = service_instances(sidecar("10.0.0.1", app="reviews", tier="backend"), push)
    assert [(i.service.hostname, i.port.number) for i in instances] == [("reviews.default.svc.cluster.local", 9080)]
    assert service_instances(sidecar("10.0.0.9"), push) == []


def push_with(workloads: tuple[WorkloadInstance, ...], revision: int = 1) -> PushContext:
    result = parse_text(SERVICES, "test")
    return PushContext.build(ConfigSnapshot(revision, {r.key: r for _, r in result.resources}), MeshConfig(),
                             registries=[RegistryContents("mesh-workloads", workloads=workloads,
                                                          version=str(len(workloads)))])


def test_an_endpoint_only_push_carries_snapshots_over_with_new_load_assignments() -> None:
    cache = SnapshotCache()
    proxy = sidecar("10.0.0.3", app="ratings")
    cache.set_push(push_with(WORKLOADS))
    before = cache.get(proxy)
    assert before is not None and cache.builds == 1
    cache.set_push(push_with((*WORKLOADS, workload("reviews-3", "10.0.0.5", app="reviews", tier="backend"))))
    after = cache.get(proxy)
    assert after is not None and (cache.builds, cache.carried) == (1, 1)
    # Every other type is the very dict streams already sent; the assignments are new.
    for type_url in (CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        assert after.resources[type_url] is before.resources[type_url]
    reviews = "outbound|9080||reviews.default.svc.cluster.local"
    assert after.resources[ENDPOINT_TYPE][reviews].digest != before.resources[ENDPOINT_TYPE][reviews].digest
    assert after.version != before.version


def digests_of(snapshot: Snapshot | None) -> dict[str, dict[str, bytes]]:
    assert snapshot is not None
    return {t: {name: r.digest for name, r in resources.items()} for t, resources in snapshot.resources.items()}


def test_carried_snapshots_are_what_translating_each_push_afresh_gives() -> None:
    config = ConfigSnapshot(1, {r.key: r for _, r in parse_text(SERVICES, "test").resources})
    cache = SnapshotCache()
    ratings = sidecar("10.0.0.3", app="ratings")
    reviews = sidecar("10.0.0.1", app="reviews", tier="backend")
    idle = sidecar("10.0.0.8", app="idle")
    moved = replace(WORKLOADS[0], ports=(("http", 9081),))
    reviews_3 = workload("reviews-3", "10.0.0.5", app="reviews", tier="backend")
    ratings_2 = workload("ratings-2", "10.0.0.6", app="ratings")
    push: PushContext | None = None
    steps = [
        ((ratings, reviews, idle), WORKLOADS),
        ((ratings, reviews, idle), (*WORKLOADS, reviews_3)),
        # Only ratings is asked for (the others' streams were busy) while reviews' own
        # workload moves port and ratings gains an endpoint...
        ((ratings,), (moved, *WORKLOADS[1:], reviews_3, ratings_2)),
        # ...then the others are, after a push that changed neither: their snapshots are
        # two pushes old.
        ((ratings, reviews, idle), (moved, *WORKLOADS[1:], ratings_2)),
        ((ratings, reviews, idle), (moved, *WORKLOADS[1:])),
    ]
    for n, (asked, workloads) in enumerate(steps):
        push = PushContext.build(config, MeshConfig(), previous=push, registries=[
            RegistryContents("mesh-workloads", workloads=tuple(workloads), version=str(n))])
        cache.set_push(push)
        for proxy in asked:
            fresh = SnapshotCache()
            fresh.set_push(push)
            assert digests_of(cache.get(proxy)) == digests_of(fresh.get(proxy)), f"step {n}, {proxy.ip}"
    # Carried: all three at step 1, ratings at 2, ratings and idle (from step 1) at 3, all at 4;
    # reviews is translated again at 3, its own workload having moved.
    assert cache.carried == 9


def test_streams_asking_alike_share_one_selection_per_push() -> None:
    snap = Snapshot.from_config(generator.ProxyConfig.from_resources("1", {
        CLUSTER_TYPE: {name: cluster_pb2.Cluster(name=name) for name in ("b", "a", "c")},
    }, {}, ()))
    everything = snap.select(CLUSTER_TYPE, None)
    assert [r.name for r in everything.resources] == ["a", "b", "c"]
    assert snap.select(CLUSTER_TYPE, None) is everything, "sorted and hashed once for every stream"
    named = frozenset({"c", "a", "missing"})
    assert [r.name for r in snap.select(CLUSTER_TYPE, named).resources] == ["a", "c"]
    assert snap.select(CLUSTER_TYPE, named) is snap.select(CLUSTER_TYPE, named)
    assert snap.select(CLUSTER_TYPE, named).digest != everything.digest
    assert snap.select(ROUTE_TYPE, None).resources == ()


def test_a_replaced_push_lets_go_of_the_responses_its_streams_shared() -> None:
    cache = SnapshotCache()
    proxy = sidecar("10.0.0.3", app="ratings")
    cache.set_push(push_with(WORKLOADS))
    snapshot = cache.get(proxy)
    assert snapshot is not None

    def responses() -> int:
        return sum(1 for key in snapshot.shared if isinstance(key, tuple) and key[0] == "response")

    for conn_id in ("1", "2"):
        Connection(conn_id, proxy).handle_request(discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE), snapshot)
    assert responses() == 1
    # An endpoint-only push carries the snapshot over, and with it the old push's dict.
    cache.set_push(push_with((*WORKLOADS, workload("reviews-3", "10.0.0.5", app="reviews", tier="backend"))))
    assert responses() == 0


def test_a_proxy_whose_own_instances_changed_or_a_config_change_is_translated_again() -> None:
    cache = SnapshotCache()
    proxy = sidecar("10.0.0.9", app="reviews", tier="backend")
    cache.set_push(push_with(WORKLOADS))
    cache.get(proxy)
    # Its own workload registers: it now serves reviews, so its inbound side changes.
    cache.set_push(push_with((*WORKLOADS, workload("me", "10.0.0.9", app="reviews", tier="backend"))))
    cache.get(proxy)
    assert (cache.builds, cache.carried) == (2, 0)
    cache.set_push(push_with(WORKLOADS, revision=2))
    cache.get(proxy)
    assert (cache.builds, cache.carried) == (3, 0)


def test_a_gateway_is_carried_over_when_a_workload_comes_to_its_own_address() -> None:
    # A gateway has no inbound side: nothing it is built from reads the instances at its
    # address, so they do not stop an endpoint-only push carrying it over.
    cache = SnapshotCache()
    gateway = Proxy(id="router~10.0.0.7~gw.default~default.svc.cluster.local", type=NodeType.ROUTER, ip="10.0.0.7",
                    pod="gw", namespace="default", dns_domain="default.svc.cluster.local",
                    labels=(("istio", "ingressgateway"),))
    sidecar_there = sidecar("10.0.0.7", app="reviews", tier="backend")
    cache.set_push(push_with(WORKLOADS))
    before = cache.get(gateway)
    cache.get(sidecar_there)
    cache.set_push(push_with((*WORKLOADS, workload("gw", "10.0.0.7", app="reviews", tier="backend"))))
    after = cache.get(gateway)
    assert before is not None and after is not None and (cache.builds, cache.carried) == (2, 1)
    assert after.resources[LISTENER_TYPE] is before.resources[LISTENER_TYPE]
    # A sidecar at that address now serves reviews: its own side is built again.
    cache.get(sidecar_there)
    assert (cache.builds, cache.carried) == (3, 1)


def test_a_config_change_keeps_unchanged_types_as_the_dicts_streams_were_sent() -> None:
    cache = SnapshotCache()
    proxy = sidecar("10.0.0.3", app="ratings")
    cache.set_push(push_of())
    before = cache.get(proxy)
    cache.set_push(PushContext.build(
        ConfigSnapshot(2, {r.key: r for _, r in parse_text("---\n".join([SERVICES, SOURCE_LABELS]), "t").resources}),
        MeshConfig(), workloads=WORKLOADS))
    after = cache.get(proxy)
    assert before is not None and after is not None and cache.builds == 2
    # The VirtualService changed routes only: clusters and listeners are the same dicts.
    assert after.resources[CLUSTER_TYPE] is before.resources[CLUSTER_TYPE]
    assert after.resources[LISTENER_TYPE] is before.resources[LISTENER_TYPE]
    assert after.resources[ROUTE_TYPE] is not before.resources[ROUTE_TYPE]


DENY_GET = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-get, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [GET]}}]}]
"""

RATINGS_V2_ROUTE = SOURCE_LABELS.replace("httpStatus: 418", "httpStatus: 503")


def config_push(revision: int, *documents: str) -> PushContext:
    """`documents` over the services, each parsed afresh (as the config watch would decode
    a changed entry): unchanged resources are equal, not the same objects."""
    result = parse_text("---\n".join([SERVICES, *documents]), "test")
    assert result.ok, result.errors()
    return PushContext.build(ConfigSnapshot(revision, {r.key: r for _, r in result.resources}), MeshConfig(),
                             workloads=WORKLOADS)


def digests(snapshot: Snapshot | None) -> dict[str, dict[str, bytes]]:
    assert snapshot is not None
    return {t: {name: r.digest for name, r in resources.items()} for t, resources in snapshot.resources.items()}


def inbound_listener(snapshot: Snapshot | None) -> EncodedResource:
    assert snapshot is not None
    return snapshot.resources[LISTENER_TYPE]["virtualInbound"]


def test_a_routing_only_push_keeps_each_sidecars_own_side_and_any_other_push_rebuilds_it() -> None:
    cache = SnapshotCache()
    proxy = sidecar("10.0.0.1", app="reviews", tier="backend")
    cache.set_push(config_push(1))
    first = cache.get(proxy)
    cache.set_push(config_push(2, SOURCE_LABELS))
    routed = cache.get(proxy)
    # Only a VirtualService changed: the inbound side is the very resource built before,
    # and so is the outbound cluster part.
    assert inbound_listener(routed) is inbound_listener(first)
    assert first is not None and routed is not None and has_fault_in(routed, "ratings")
    assert routed.cluster_part is first.cluster_part
    # A policy reaches the inbound side: it is translated again, with the new filter.
    cache.set_push(config_push(3, SOURCE_LABELS, DENY_GET))
    guarded = cache.get(proxy)
    assert inbound_listener(guarded).digest != inbound_listener(routed).digest
    assert guarded is not None and guarded.cluster_part is not routed.cluster_part


def test_a_routing_change_after_endpoint_changes_still_keeps_each_sidecars_own_side() -> None:
    services = {r.key: r for _, r in parse_text(SERVICES, "test").resources}
    routes = {r.key: r for _, r in parse_text(SOURCE_LABELS, "test").resources}
    reviews_3 = workload("reviews-3", "10.0.0.5", app="reviews", tier="backend")
    steps = [(ConfigSnapshot(1, services), WORKLOADS), (ConfigSnapshot(1, services), (*WORKLOADS, reviews_3)),
             (ConfigSnapshot(1, services), WORKLOADS), (ConfigSnapshot(2, {**services, **routes}), WORKLOADS)]
    cache = SnapshotCache()
    proxy = sidecar("10.0.0.1", app="reviews", tier="backend")
    push: PushContext | None = None
    snapshots = []
    for n, (config, workloads) in enumerate(steps):
        push = PushContext.build(config, MeshConfig(), previous=push, registries=[
            RegistryContents("mesh-workloads", workloads=workloads, version=str(n))])
        cache.set_push(push)
        snapshots.append(cache.get(proxy))
    assert (cache.builds, cache.carried) == (2, 2)
    # Two endpoint changes later, the routing change still finds the inbound side it built.
    assert inbound_listener(snapshots[3]) is inbound_listener(snapshots[0])
    assert has_fault_in(snapshots[3], "ratings") and not has_fault_in(snapshots[0], "ratings")


def test_endpoint_pushes_keep_what_the_last_translation_made_and_no_more_than_they_need() -> None:
    config = ConfigSnapshot(1, {r.key: r for _, r in parse_text(SERVICES, "test").resources})
    cache = SnapshotCache()
    proxies = [sidecar("10.0.0.1", app="reviews", tier="backend"), sidecar("10.0.0.3", app="ratings")]
    push: PushContext | None = None
    sizes = []
    for n in range(40):
        # Every push a different endpoint set: each leaves load assignments the next does not use.
        extra = (workload(f"reviews-{n}", f"10.0.2.{n}", app="reviews", tier="backend"),) if n else ()
        push = PushContext.build(config, MeshConfig(), previous=push, registries=[
            RegistryContents("mesh-workloads", workloads=(*WORKLOADS, *extra), version=str(n))])
        cache.set_push(push)
        for proxy in proxies:
            cache.get(proxy)
        sizes.append(cache.memo.size)
    assert cache.carried == 78
    assert max(sizes[5:]) <= sizes[5] + 4, sizes


def has_fault_in(snapshot: Snapshot, host: str) -> bool:
    """Whether the snapshot's port-9080 routes, as they would be sent, fault `host`."""
    entry = discovery_pb2.DiscoveryResponse.FromString(snapshot.resources[ROUTE_TYPE]["9080"].field_bytes)
    route = route_pb2.RouteConfiguration()
    entry.resources[0].Unpack(route)
    return has_fault(route, host)


def test_what_pushes_keep_across_changes_is_what_a_fresh_translation_gives() -> None:
    """Every cache across pushes (own sides beside routing, virtual hosts, clusters,
    encodings) must give what translating from nothing gives, whatever changed."""
    steps = [(), (SOURCE_LABELS,), (RATINGS_V2_ROUTE,), (RATINGS_V2_ROUTE, DENY_GET), (DENY_GET,), ()]
    proxies = [sidecar("10.0.0.1", app="reviews", tier="backend"), sidecar("10.0.0.3", app="ratings"),
               sidecar("10.0.0.4", app="reviews", tier="backend", extra="x"),
               # Another namespace's sidecars name the services differently (no bare names).
               sidecar("10.0.1.1", namespace="other", app="client")]
    cache = SnapshotCache()
    for revision, documents in enumerate(steps, start=1):
        push = config_push(revision, *documents)
        cache.set_push(push)
        for proxy in proxies:
            fresh = Snapshot.from_config(generator.generate(proxy, push, TranslationMemo()), TranslationMemo())
            assert digests(cache.get(proxy)) == digests(fresh), (revision, proxy.ip)


HIDDEN_AUTHORIZER = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext-authz, namespace: default}
spec:
  hosts: [ext-authz.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9000, name: grpc, protocol: GRPC}]
  workloadSelector: {labels: {app: ext-authz}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: [./ratings.default.svc.cluster.local]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: default}
spec: {action: CUSTOM, provider: {name: authz-grpc}, rules: [{to: [{operation: {paths: [/x]}}]}]}
"""


def test_an_endpoint_change_reaches_the_authorizer_a_sidecar_calls_but_does_not_see() -> None:
    result = parse_text("---\n".join([SERVICES, HIDDEN_AUTHORIZER, configmap(
        "extensionProviders:\n- {name: authz-grpc, envoyExtAuthzGrpc: "
        "{service: ext-authz.default.svc.cluster.local, port: 9000}}\n")]), "test")
    assert result.ok, result.errors()
    config = ConfigSnapshot(1, {r.key: r for _, r in result.resources})
    mesh = mesh_from_config(config.of_kind("MeshConfig"), MeshConfig(), "istio-system")
    cache = SnapshotCache()
    ratings = sidecar("10.0.0.3", app="ratings")
    authorizer = "outbound|9000||ext-authz.default.svc.cluster.local"
    push: PushContext | None = None
    for n, authorizers in enumerate((["10.0.9.1"], ["10.0.9.1", "10.0.9.2"])):
        workloads = (*WORKLOADS, *(workload(f"authz-{a}", a, app="ext-authz") for a in authorizers))
        push = PushContext.build(config, mesh, previous=push, registries=[
            RegistryContents("mesh-workloads", workloads=workloads, version=str(n))])
        cache.set_push(push)
        snapshot = cache.get(ratings)
        assert snapshot is not None
        # Hidden by the Sidecar, the authorizer's cluster is the sidecar's own, endpoints inline.
        cluster = cluster_pb2.Cluster()
        response = discovery_pb2.DiscoveryResponse.FromString(snapshot.resources[CLUSTER_TYPE][authorizer].field_bytes)
        response.resources[0].Unpack(cluster)
        addresses = [e.endpoint.address.socket_address.address
                     for group in cluster.load_assignment.endpoints for e in group.lb_endpoints]
        assert addresses == authorizers, f"push {n}"


def test_any_mix_of_endpoint_and_routing_changes_comes_to_a_fresh_translation() -> None:
    """Endpoint changes carry snapshots over and keep each sidecar's own side for the next
    routing change: whatever the order, and whichever proxies were not asked for in
    between, every answer is what translating from nothing gives."""
    rng = random.Random(11)
    parsed = {name: {r.key: r for _, r in parse_text(text, name).resources} for name, text in (
        ("services", SERVICES), ("hidden", HIDDEN_AUTHORIZER), ("v1", SOURCE_LABELS), ("v2", RATINGS_V2_ROUTE),
        ("providers", configmap("extensionProviders:\n- {name: authz-grpc, envoyExtAuthzGrpc: "
                                "{service: ext-authz.default.svc.cluster.local, port: 9000}}\n")))}
    base = {**parsed["services"], **parsed["hidden"], **parsed["providers"]}
    mesh = mesh_from_config([r for r in base.values() if r.kind == "MeshConfig"], MeshConfig(), "istio-system")
    config = ConfigSnapshot(1, base)
    pool = [*WORKLOADS, workload("reviews-3", "10.0.0.5", app="reviews", tier="backend"),
            workload("ratings-2", "10.0.0.6", app="ratings"), workload("authz-1", "10.0.9.1", app="ext-authz"),
            workload("authz-2", "10.0.9.2", app="ext-authz"), replace(WORKLOADS[0], ports=(("http", 9081),))]
    proxies = [sidecar("10.0.0.1", app="reviews", tier="backend"), sidecar("10.0.0.3", app="ratings"),
               sidecar("10.0.0.8", app="idle"), sidecar("10.0.1.1", namespace="other", app="client")]
    cache = SnapshotCache()
    push: PushContext | None = None
    workloads = list(WORKLOADS)
    for step in range(60):
        if step and rng.random() < 0.3:
            routes = rng.choice([{}, parsed["v1"], parsed["v2"]])
            config = ConfigSnapshot(config.revision + 1, {**base, **routes})
        elif step:
            # An endpoint change: a workload comes, goes, or is replaced (own ones included).
            candidate = rng.choice(pool)
            same_address = [w for w in workloads if w.address == candidate.address]
            if candidate in workloads:
                workloads.remove(candidate)
            else:
                for w in same_address:
                    workloads.remove(w)
                workloads.append(candidate)
        push = PushContext.build(config, mesh, previous=push, registries=[
            RegistryContents("mesh-workloads", workloads=tuple(workloads), version=str(step))])
        cache.set_push(push)
        for proxy in proxies:
            if rng.random() < 0.3:
                continue  # not asked for in this push: its stream was busy
            fresh = Snapshot.from_config(generator.generate(proxy, push, TranslationMemo()), TranslationMemo())
            assert digests(cache.get(proxy)) == digests(fresh), (step, proxy.ip)
    assert cache.carried > 30 and cache.memo.hits > 0
