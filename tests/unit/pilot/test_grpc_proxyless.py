"""Proxyless gRPC translation, pure: what a gRPC xDS client is generated (API listeners
named as it asks, RDS with the VirtualService's routes, clusters gRPC accepts)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import json_format, struct_pb2

from libs.config import parse_text
from libs.envoy import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, grpc_bootstrap
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import NodeType, Proxy, parse_node
from services.pilot.model.push_context import PushContext
from services.pilot.networking import generator
from services.pilot.networking.generator import ProxyConfig

FQDN = "echo.default.svc.cluster.local"
ROUTE = f"outbound|7070||{FQDN}"
CLIENT = Proxy(id="sidecar~10.1.0.9~client.default~default.svc.cluster.local", type=NodeType.SIDECAR,
               ip="10.1.0.9", pod="client", namespace="default", dns_domain="default.svc.cluster.local",
               labels=(("app", "client"),), proxyless=True)

SERVICES = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{FQDN}]
  addresses: [240.0.0.7]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 7070, name: grpc, protocol: GRPC}}]
  endpoints:
  - {{address: 10.0.0.1, labels: {{version: v1}}}}
  - {{address: 10.0.0.2, labels: {{version: v2}}}}
  - {{address: "unix:///var/run/echo.sock", labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo
  trafficPolicy:
    connectionPool: {{http: {{http2MaxRequests: 64}}}}
    tls: {{mode: ISTIO_MUTUAL}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - name: v2
    labels: {{version: v2}}
    trafficPolicy: {{loadBalancer: {{simple: LEAST_REQUEST}}}}
"""

SPLIT = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
    timeout: 2.5s
    corsPolicy: {allowOrigins: [{exact: "https://example.com"}]}
    fault: {abort: {httpStatus: 503, percentage: {value: 10}}}
  - route:
    - {destination: {host: echo, subset: v1}, weight: 80}
    - {destination: {host: echo, subset: v2}, weight: 20}
"""


def push_of(*documents: str) -> PushContext:
    result = parse_text("---\n".join([SERVICES, *documents]), "test")
    assert result.ok, result.errors()
    return PushContext.build(ConfigSnapshot(1, {r.key: r for _, r in result.resources}), MeshConfig())


def generate(*documents: str, proxy: Proxy = CLIENT) -> ProxyConfig:
    return generator.generate(proxy, push_of(*documents))


def manager_of(listener: listener_pb2.Listener) -> hcm.HttpConnectionManager:
    manager = hcm.HttpConnectionManager()
    assert listener.api_listener.api_listener.Unpack(manager)
    return manager


def test_grpc_clients_are_recognised_by_generator_metadata_or_user_agent() -> None:
    envoy = base_pb2.Node(id=CLIENT.id, user_agent_name="envoy")
    assert not parse_node(envoy).proxyless
    istio = base_pb2.Node(id=CLIENT.id, metadata=struct_pb2.Struct(fields={
        "GENERATOR": struct_pb2.Value(string_value="grpc")}))
    assert parse_node(istio).proxyless
    bare = base_pb2.Node(id=CLIENT.id, user_agent_name="gRPC C-core linux Python")
    assert parse_node(bare).proxyless
    # Sidecars and gRPC clients of one namespace never share a snapshot.
    assert parse_node(envoy).class_key != parse_node(istio).class_key


def test_api_listeners_are_named_every_way_a_client_may_write_the_target() -> None:
    listeners = generate().resources[LISTENER_TYPE]
    forms = [FQDN, "echo.default.svc", "echo.default", "echo", "240.0.0.7"]
    assert set(listeners) == {*forms, *(f"{form}:7070" for form in forms)}
    for name, listener in listeners.items():
        assert listener.name == name
        assert not listener.filter_chains
        manager = manager_of(listener)
        assert manager.rds.route_config_name == ROUTE
        assert manager.rds.config_source.HasField("ads")
        # gRPC NACKs filters it does not know and needs the router last.
        assert [f.name for f in manager.http_filters] == ["envoy.filters.http.fault", "envoy.filters.http.router"]


def test_short_names_resolve_against_the_clients_namespace() -> None:
    other = Proxy(id="sidecar~10.1.0.8~c.other~other.svc.cluster.local", type=NodeType.SIDECAR, ip="10.1.0.8",
                  pod="c", namespace="other", dns_domain="other.svc.cluster.local", proxyless=True)
    listeners = generate(proxy=other).resources[LISTENER_TYPE]
    assert "echo.default:7070" in listeners
    assert "echo:7070" not in listeners
    (route,) = generate(proxy=other).resources[ROUTE_TYPE].values()
    assert "echo:7070" not in route.virtual_hosts[0].domains


def test_routes_carry_the_virtual_service_for_grpc() -> None:
    config = generate(SPLIT)
    (route_config,) = config.resources[ROUTE_TYPE].values()
    assert isinstance(route_config, route_pb2.RouteConfiguration)
    assert route_config.name == ROUTE
    (vhost,) = route_config.virtual_hosts
    assert {"echo:7070", "echo.default:7070", f"{FQDN}:7070", "echo"} <= set(vhost.domains)
    header, split = vhost.routes
    assert header.match.headers[0].name == "end-user"
    assert header.match.headers[0].string_match.exact == "jason"
    assert header.route.cluster == f"outbound|7070|v2|{FQDN}"
    # gRPC ignores `timeout`; the route's maximum stream duration carries it (gRFC A31).
    assert header.route.max_stream_duration.max_stream_duration.ToMilliseconds() == 2500
    # Fault injection is kept (gRPC implements it); CORS is dropped (gRPC would NACK it).
    assert set(header.typed_per_filter_config) == {"envoy.filters.http.fault"}
    assert any("corsPolicy does not apply" in w for w in config.warnings)
    assert [(c.name, c.weight.value) for c in split.route.weighted_clusters.clusters] == [
        (f"outbound|7070|v1|{FQDN}", 80), (f"outbound|7070|v2|{FQDN}", 20)]
    assert config.references[ROUTE] == {f"outbound|7070|v1|{FQDN}", f"outbound|7070|v2|{FQDN}"}


def test_clusters_are_eds_with_what_grpc_accepts() -> None:
    config = generate()
    clusters = config.resources[CLUSTER_TYPE]
    assert set(clusters) == {ROUTE, f"outbound|7070|v1|{FQDN}", f"outbound|7070|v2|{FQDN}"}
    for cluster in clusters.values():
        assert isinstance(cluster, cluster_pb2.Cluster)
        assert cluster.type == cluster_pb2.Cluster.EDS
        assert cluster.eds_cluster_config.eds_config.HasField("ads")
        # gRPC C-core NACKs any lb_policy but ROUND_ROBIN and RING_HASH, and TLS without its
        # certificate providers.
        assert cluster.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
        assert not cluster.HasField("transport_socket") and not cluster.transport_socket_matches
        assert cluster.circuit_breakers.thresholds[0].max_requests.value == 64
    assert any("LEAST_REQUEST is not supported by gRPC" in w for w in config.warnings)
    assert any("ISTIO_MUTUAL is not applied" in w for w in config.warnings)
    assignment = config.resources[ENDPOINT_TYPE][f"outbound|7070|v2|{FQDN}"]
    addresses = [e.endpoint.address.socket_address.address for g in assignment.endpoints for e in g.lb_endpoints]
    assert addresses == ["10.0.0.2"], "gRPC takes IP endpoints only"
    assert all(group.HasField("locality") and group.load_balancing_weight.value for group in assignment.endpoints)


def test_consistent_hash_is_ring_hash() -> None:
    def cluster_with(balancer: str) -> tuple[cluster_pb2.Cluster, tuple[str, ...]]:
        rule = SERVICES.replace("tls: {mode: ISTIO_MUTUAL}", f"loadBalancer: {balancer}")
        config = generator.generate(CLIENT, PushContext.build(ConfigSnapshot(1, {
            r.key: r for _, r in parse_text(rule, "test").resources}), MeshConfig()))
        return config.resources[CLUSTER_TYPE][ROUTE], config.warnings

    by_header, warnings = cluster_with("{consistentHash: {httpHeaderName: x-user, minimumRingSize: 2048}}")
    assert by_header.lb_policy == cluster_pb2.Cluster.RING_HASH
    assert by_header.ring_hash_lb_config.minimum_ring_size.value == 2048
    assert not any("hashes on headers only" in w for w in warnings)
    by_cookie, warnings = cluster_with("{consistentHash: {httpCookie: {name: u, ttl: 0s}}}")
    assert by_cookie.lb_policy == cluster_pb2.Cluster.RING_HASH
    assert any("hashes on headers only" in w for w in warnings)


def test_dns_services_are_logical_dns() -> None:
    external = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: grpc, protocol: GRPC}]
"""
    config = generate(external)
    cluster = config.resources[CLUSTER_TYPE]["outbound|443||api.example.com"]
    assert cluster.type == cluster_pb2.Cluster.LOGICAL_DNS
    (group,) = cluster.load_assignment.endpoints
    assert group.lb_endpoints[0].endpoint.address.socket_address.address == "api.example.com"
    assert "outbound|443||api.example.com" not in config.resources[ENDPOINT_TYPE]
    assert "api.example.com:443" in config.resources[LISTENER_TYPE]


def test_sidecars_are_unaffected() -> None:
    sidecar = Proxy(id=CLIENT.id, type=NodeType.SIDECAR, ip=CLIENT.ip, pod=CLIENT.pod, namespace=CLIENT.namespace,
                    dns_domain=CLIENT.dns_domain, labels=CLIENT.labels)
    listeners = generate(SPLIT, proxy=sidecar).resources[LISTENER_TYPE]
    assert listeners and not any(listener.HasField("api_listener") for listener in listeners.values())


def test_the_bootstrap_helper_names_a_node_pilot_reads_as_proxyless() -> None:
    document = grpc_bootstrap.bootstrap("127.0.0.1:15010", pod="client", namespace="default", ip="10.1.0.9",
                                        labels={"app": "client"})
    assert document["xds_servers"] == [{"server_uri": "127.0.0.1:15010", "channel_creds": [{"type": "insecure"}],
                                        "server_features": ["xds_v3"]}]
    proxy = parse_node(json_format.ParseDict(document["node"], base_pb2.Node()))
    assert (proxy.proxyless, proxy.namespace, proxy.pod, proxy.label_map) == (True, "default", "client",
                                                                              {"app": "client"})
    assert proxy.id == CLIENT.id
