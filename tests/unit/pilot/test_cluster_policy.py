"""DestinationRule traffic policy -> Envoy cluster and route fields (pure translation)."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from libs.config import parse_text
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.push_context import PushContext
from services.pilot.networking import clusters
from services.pilot.networking.cluster_policy import apply_traffic_policy, hash_policies, merged_policy
from services.pilot.networking.cluster_pool import HTTP_OPTIONS, MAX_THRESHOLD
from services.pilot.networking.cluster_tls import SYSTEM_CA_BUNDLE

Cluster = cluster_pb2.Cluster
HashPolicy = rc.RouteAction.HashPolicy
SanMatcher = common_pb2.SubjectAltNameMatcher


def eds_cluster(name: str = "outbound|80||a.example.com", *, http2: bool = False) -> cluster_pb2.Cluster:
    cluster = Cluster(name=name, type=Cluster.EDS)
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    if http2:
        clusters.use_http2(cluster)
    return cluster


def applied(policy: dict[str, Any], **kwargs: Any) -> cluster_pb2.Cluster:
    cluster = eds_cluster(**kwargs)
    apply_traffic_policy(cluster, policy)
    return cluster


def options_of(cluster: cluster_pb2.Cluster) -> http_protocol_options_pb2.HttpProtocolOptions:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    assert cluster.typed_extension_protocol_options[HTTP_OPTIONS].Unpack(options)
    return options


def tls_of(cluster: cluster_pb2.Cluster) -> tls_pb2.UpstreamTlsContext:
    assert cluster.transport_socket.name == "envoy.transport_sockets.tls"
    context = tls_pb2.UpstreamTlsContext()
    assert cluster.transport_socket.typed_config.Unpack(context)
    return context


# -- which policy applies --------------------------------------------------------------------

RULE = {"trafficPolicy": {
    "loadBalancer": {"simple": "RANDOM"},
    "connectionPool": {"tcp": {"maxConnections": 10}},
    "portLevelSettings": [{"port": {"number": 8080}, "outlierDetection": {"consecutive5xxErrors": 3}}],
}}

PORT_80_POOL = {"port": {"number": 80}, "connectionPool": {"tcp": {"maxConnections": 1}}}


@pytest.mark.parametrize(("rule", "subset", "port", "expected"), [
    pytest.param(None, None, 80, {}, id="no-rule"),
    pytest.param(RULE, None, 80, {"loadBalancer": {"simple": "RANDOM"},
                                  "connectionPool": {"tcp": {"maxConnections": 10}}}, id="rule"),
    # A port-level entry replaces every component; loadBalancer and connectionPool fall back
    # to the defaults instead of being inherited.
    pytest.param(RULE, None, 8080, {"outlierDetection": {"consecutive5xxErrors": 3}}, id="rule-port-level"),
    pytest.param(RULE, {"loadBalancer": {"simple": "ROUND_ROBIN"}}, 80,
                 {"loadBalancer": {"simple": "ROUND_ROBIN"}, "connectionPool": {"tcp": {"maxConnections": 10}}},
                 id="subset-overrides-one-component"),
    pytest.param(RULE, {"loadBalancer": {"simple": "ROUND_ROBIN"}}, 8080,
                 {"loadBalancer": {"simple": "ROUND_ROBIN"}, "outlierDetection": {"consecutive5xxErrors": 3}},
                 id="subset-over-rule-port-level"),
    pytest.param(RULE, {"tls": {"mode": "SIMPLE"}, "portLevelSettings": [PORT_80_POOL]}, 80,
                 {"connectionPool": {"tcp": {"maxConnections": 1}}}, id="subset-port-level-replaces-all"),
    pytest.param(RULE, {"tls": {"mode": "SIMPLE"}, "portLevelSettings": [{**PORT_80_POOL, "port": {"number": 9090}}]},
                 80, {"loadBalancer": {"simple": "RANDOM"}, "connectionPool": {"tcp": {"maxConnections": 10}},
                      "tls": {"mode": "SIMPLE"}}, id="subset-port-level-other-port"),
    pytest.param({"trafficPolicy": {"portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "SIMPLE"}}]}},
                 {"loadBalancer": {"simple": "RANDOM"}}, 80,
                 {"tls": {"mode": "SIMPLE"}, "loadBalancer": {"simple": "RANDOM"}}, id="rule-port-level-only"),
])
def test_merged_policy_follows_istio_precedence(rule: dict[str, Any] | None, subset: dict[str, Any] | None,
                                                port: int, expected: dict[str, Any]) -> None:
    assert merged_policy(rule, subset, port) == expected


def test_merged_policy_does_not_change_the_rule() -> None:
    rule = {"trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}
    merged_policy(rule, {"loadBalancer": {"simple": "ROUND_ROBIN"}}, 80)
    assert rule == {"trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}


# -- defaults --------------------------------------------------------------------------------

def test_no_policy_gives_least_request_and_circuit_breakers_at_the_maximum() -> None:
    cluster = applied({})
    assert cluster.lb_policy == Cluster.LEAST_REQUEST
    [thresholds] = cluster.circuit_breakers.thresholds
    assert (thresholds.max_connections.value, thresholds.max_pending_requests.value, thresholds.max_requests.value,
            thresholds.max_retries.value) == (MAX_THRESHOLD,) * 4
    assert thresholds.track_remaining
    assert not cluster.HasField("outlier_detection")
    assert not cluster.HasField("transport_socket")
    assert HTTP_OPTIONS not in cluster.typed_extension_protocol_options


def test_http2_ports_keep_their_explicit_http2_options() -> None:
    options = options_of(applied({}, http2=True))
    assert options.explicit_http_config.HasField("http2_protocol_options")


# -- load balancer ---------------------------------------------------------------------------

@pytest.mark.parametrize(("simple", "policy"), [
    ("ROUND_ROBIN", Cluster.ROUND_ROBIN), ("LEAST_CONN", Cluster.LEAST_REQUEST),
    ("LEAST_REQUEST", Cluster.LEAST_REQUEST), ("RANDOM", Cluster.RANDOM), ("UNSPECIFIED", Cluster.LEAST_REQUEST),
])
def test_simple_load_balancers(simple: str, policy: int) -> None:
    assert applied({"loadBalancer": {"simple": simple}}).lb_policy == policy


def test_passthrough_connects_to_the_original_destination() -> None:
    cluster = eds_cluster()
    cluster.load_assignment.cluster_name = cluster.name
    apply_traffic_policy(cluster, {"loadBalancer": {"simple": "PASSTHROUGH"}})
    assert (cluster.type, cluster.lb_policy) == (Cluster.ORIGINAL_DST, Cluster.CLUSTER_PROVIDED)
    assert not cluster.HasField("eds_cluster_config")
    assert not cluster.HasField("load_assignment")


def test_original_dst_clusters_keep_cluster_provided() -> None:
    cluster = Cluster(name="x", type=Cluster.ORIGINAL_DST, lb_policy=Cluster.CLUSTER_PROVIDED)
    apply_traffic_policy(cluster, {"loadBalancer": {"consistentHash": {"httpHeaderName": "x"}}})
    assert cluster.lb_policy == Cluster.CLUSTER_PROVIDED
    assert not cluster.HasField("ring_hash_lb_config")


@pytest.mark.parametrize(("consistent", "expected"), [
    ({"httpHeaderName": "x"}, {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": "1024"}}),
    ({"httpHeaderName": "x", "minimumRingSize": 64},
     {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": "64"}}),
    ({"httpHeaderName": "x", "ringHash": {"minimumRingSize": 4096}},
     {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": "4096"}}),
    ({"httpHeaderName": "x", "ringHash": {}}, {"lb_policy": "RING_HASH"}),
    ({"useSourceIp": True, "maglev": {"tableSize": 65537}},
     {"lb_policy": "MAGLEV", "maglev_lb_config": {"table_size": "65537"}}),
    ({"useSourceIp": True, "maglev": {}}, {"lb_policy": "MAGLEV"}),
])
def test_consistent_hash_cluster_side(consistent: dict[str, Any], expected: dict[str, Any]) -> None:
    cluster = applied({"loadBalancer": {"consistentHash": consistent}})
    found = json_format.MessageToDict(cluster, preserving_proto_field_name=True)
    assert {k: found.get(k) for k in ("lb_policy", "ring_hash_lb_config", "maglev_lb_config") if k in found} == expected


def test_warmup_sets_slow_start() -> None:
    cluster = applied({"loadBalancer": {"simple": "ROUND_ROBIN", "warmupDurationSecs": "30s"}})
    assert cluster.round_robin_lb_config.slow_start_config.slow_start_window.seconds == 30
    cluster = applied({"loadBalancer": {"warmup": {"duration": "10s", "minimumPercent": 5, "aggression": 2}}})
    config = cluster.least_request_lb_config.slow_start_config
    assert (config.slow_start_window.seconds, config.min_weight_percent.value, config.aggression.default_value) == \
        (10, 5, 2)
    assert config.aggression.runtime_key


@pytest.mark.parametrize(("consistent", "expected"), [
    ({"httpHeaderName": "x-user"}, HashPolicy(header=HashPolicy.Header(header_name="x-user"))),
    ({"httpQueryParameterName": "u"}, HashPolicy(query_parameter=HashPolicy.QueryParameter(name="u"))),
    ({"useSourceIp": True}, HashPolicy(connection_properties=HashPolicy.ConnectionProperties(source_ip=True))),
    ({"httpCookie": {"name": "s"}}, HashPolicy(cookie=HashPolicy.Cookie(name="s"))),
    ({"httpCookie": {"name": "s", "path": "/a", "ttl": "0s"}},
     HashPolicy(cookie=HashPolicy.Cookie(name="s", path="/a", ttl={}))),
    ({"httpCookie": {"name": "s", "ttl": "1.5s", "attributes": [{"name": "SameSite", "value": "Strict"}]}},
     HashPolicy(cookie=HashPolicy.Cookie(name="s", ttl={"seconds": 1, "nanos": 500_000_000},
                                         attributes=[HashPolicy.CookieAttribute(name="SameSite", value="Strict")]))),
])
def test_hash_policies_route_side(consistent: dict[str, Any], expected: rc.RouteAction.HashPolicy) -> None:
    [policy] = hash_policies({"loadBalancer": {"consistentHash": consistent}})
    assert policy == expected


def test_session_cookie_only_with_a_ttl() -> None:
    """Envoy generates the cookie only when a ttl is present, 0s included."""
    [without] = hash_policies({"loadBalancer": {"consistentHash": {"httpCookie": {"name": "s"}}}})
    [zero] = hash_policies({"loadBalancer": {"consistentHash": {"httpCookie": {"name": "s", "ttl": "0s"}}}})
    assert not without.cookie.HasField("ttl")
    assert zero.cookie.HasField("ttl")


def test_no_hash_policy_without_consistent_hash() -> None:
    assert hash_policies({}) == []
    assert hash_policies({"loadBalancer": {"simple": "RANDOM"}}) == []


# -- connection pool -------------------------------------------------------------------------

def test_connection_pool_limits_and_timeouts() -> None:
    cluster = applied({"connectionPool": {
        "tcp": {"maxConnections": 5, "connectTimeout": "0.25s", "maxConnectionDuration": "60s", "idleTimeout": "9s",
                "tcpKeepalive": {"probes": 4, "time": "0.5s", "interval": "75s"}},
        "http": {"http1MaxPendingRequests": 6, "http2MaxRequests": 7, "maxRetries": 8, "maxRequestsPerConnection": 9},
        "perHostLimits": {"maxConnections": 2},
    }})
    [thresholds] = cluster.circuit_breakers.thresholds
    assert (thresholds.max_connections.value, thresholds.max_pending_requests.value, thresholds.max_requests.value,
            thresholds.max_retries.value) == (5, 6, 7, 8)
    [per_host] = cluster.circuit_breakers.per_host_thresholds
    assert per_host.max_connections.value == 2
    assert (cluster.connect_timeout.seconds, cluster.connect_timeout.nanos) == (0, 250_000_000)
    keepalive = cluster.upstream_connection_options.tcp_keepalive
    assert (keepalive.keepalive_probes.value, keepalive.keepalive_time.value, keepalive.keepalive_interval.value) == \
        (4, 1, 75)
    options = options_of(cluster)
    common = options.common_http_protocol_options
    # tcp.idleTimeout stands in for the HTTP idle timeout when http sets none.
    assert (common.idle_timeout.seconds, common.max_connection_duration.seconds,
            common.max_requests_per_connection.value) == (9, 60, 9)
    # Envoy requires a protocol: HTTP/1.1, as Istio adds when it sets none.
    assert options.explicit_http_config.HasField("http_protocol_options")


def test_zero_limits_mean_unset_as_in_istio() -> None:
    cluster = applied({"connectionPool": {"tcp": {"maxConnections": 0}, "http": {"maxRetries": 0}}})
    [thresholds] = cluster.circuit_breakers.thresholds
    assert thresholds.max_connections.value == thresholds.max_retries.value == MAX_THRESHOLD


def test_http_idle_timeout_wins_over_tcp() -> None:
    cluster = applied({"connectionPool": {"tcp": {"idleTimeout": "9s"}, "http": {"idleTimeout": "3s"}}})
    assert options_of(cluster).common_http_protocol_options.idle_timeout.seconds == 3


def test_empty_tcp_keepalive_turns_keepalive_on() -> None:
    cluster = applied({"connectionPool": {"tcp": {"tcpKeepalive": {}}}})
    assert cluster.upstream_connection_options.HasField("tcp_keepalive")


def test_max_concurrent_streams_only_on_http2_clusters() -> None:
    pool = {"connectionPool": {"http": {"maxConcurrentStreams": 16}}}
    h2 = options_of(applied(pool, http2=True)).explicit_http_config.http2_protocol_options
    assert h2.max_concurrent_streams.value == 16
    assert HTTP_OPTIONS not in applied(pool).typed_extension_protocol_options


def test_h2_upgrade_and_client_protocol() -> None:
    upgraded = options_of(applied({"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE",
                                                                "maxConcurrentStreams": 4}}}))
    assert upgraded.explicit_http_config.http2_protocol_options.max_concurrent_streams.value == 4
    assert HTTP_OPTIONS not in applied({"connectionPool": {"http": {"h2UpgradePolicy": "DO_NOT_UPGRADE"}}}) \
        .typed_extension_protocol_options
    # DO_NOT_UPGRADE does not downgrade an HTTP/2 port.
    kept = options_of(applied({"connectionPool": {"http": {"h2UpgradePolicy": "DO_NOT_UPGRADE"}}}, http2=True))
    assert kept.explicit_http_config.HasField("http2_protocol_options")
    client = options_of(applied({"connectionPool": {"http": {"useClientProtocol": True}}}, http2=True))
    assert client.WhichOneof("upstream_protocol_options") == "use_downstream_protocol_config"
    assert client.use_downstream_protocol_config.HasField("http2_protocol_options")


# -- outlier detection -----------------------------------------------------------------------

def test_outlier_detection() -> None:
    cluster = applied({"outlierDetection": {
        "consecutive5xxErrors": 5, "consecutiveGatewayErrors": 0, "interval": "10s", "baseEjectionTime": "30s",
        "maxEjectionPercent": 50, "minHealthPercent": 25, "splitExternalLocalOriginErrors": True,
        "consecutiveLocalOriginFailures": 2,
    }})
    out = json_format.MessageToDict(cluster.outlier_detection, preserving_proto_field_name=True)
    assert out == {
        "enforcing_success_rate": 0, "consecutive_5xx": 5, "enforcing_consecutive_5xx": 100,
        "consecutive_gateway_failure": 0, "enforcing_consecutive_gateway_failure": 0,
        "interval": "10s", "base_ejection_time": "30s", "max_ejection_percent": 50,
        "split_external_local_origin_errors": True, "consecutive_local_origin_failure": 2,
        "enforcing_consecutive_local_origin_failure": 100, "enforcing_local_origin_success_rate": 0,
    }
    assert cluster.common_lb_config.healthy_panic_threshold.value == 25


def test_outlier_detection_without_min_health_turns_panic_mode_off() -> None:
    cluster = applied({"outlierDetection": {"consecutive5xxErrors": 1}})
    assert cluster.common_lb_config.HasField("healthy_panic_threshold")
    assert cluster.common_lb_config.healthy_panic_threshold.value == 0
    assert not applied({}).common_lb_config.HasField("healthy_panic_threshold")


def test_deprecated_consecutive_errors_count_gateway_errors() -> None:
    out = applied({"outlierDetection": {"consecutiveErrors": 4}}).outlier_detection
    assert (out.consecutive_gateway_failure.value, out.enforcing_consecutive_gateway_failure.value,
            out.enforcing_consecutive_5xx.value) == (4, 100, 0)
    # The fields that replaced it win.
    out = applied({"outlierDetection": {"consecutiveErrors": 4, "consecutive5xxErrors": 2}}).outlier_detection
    assert (out.consecutive_5xx.value, out.enforcing_consecutive_5xx.value) == (2, 100)


# -- TLS -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["DISABLE", "ISTIO_MUTUAL"])
def test_no_transport_socket_for_disable_and_istio_mutual(mode: str) -> None:
    cluster = applied({"tls": {"mode": mode}})
    assert not cluster.HasField("transport_socket")
    assert HTTP_OPTIONS not in cluster.typed_extension_protocol_options


def test_simple_tls_with_ca_file_sni_and_sans() -> None:
    cluster = applied({"tls": {"mode": "SIMPLE", "caCertificates": "/etc/ca.pem", "sni": "a.example.com",
                               "subjectAltNames": ["a.example.com", "spiffe://td/ns/x/sa/y", "10.1.2.3"],
                               "caCrl": "/etc/crl.pem"}})
    context = tls_of(cluster)
    assert context.sni == "a.example.com"
    combined = context.common_tls_context.combined_validation_context
    # The CA comes from the agent's SDS (Istio's file-root:); the CRL stays a file.
    assert combined.validation_context_sds_secret_config.name == "file-root:/etc/ca.pem"
    assert [g.envoy_grpc.cluster_name for g in
            combined.validation_context_sds_secret_config.sds_config.api_config_source.grpc_services] == ["sds-grpc"]
    validation = combined.default_validation_context
    assert not validation.HasField("trusted_ca")
    assert validation.crl.filename == "/etc/crl.pem"
    # Istio's SANs are untyped: each is tried as every type it could be.
    assert [(m.san_type, m.matcher.exact) for m in validation.match_typed_subject_alt_names] == [
        (SanMatcher.DNS, "a.example.com"), (SanMatcher.URI, "a.example.com"),
        (SanMatcher.DNS, "spiffe://td/ns/x/sa/y"), (SanMatcher.URI, "spiffe://td/ns/x/sa/y"),
        (SanMatcher.DNS, "10.1.2.3"), (SanMatcher.URI, "10.1.2.3"), (SanMatcher.IP_ADDRESS, "10.1.2.3")]
    assert not context.common_tls_context.tls_certificates
    assert not context.common_tls_context.tls_certificate_sds_secret_configs
    # An explicit SNI: no auto_sni, so no protocol options were needed.
    assert HTTP_OPTIONS not in cluster.typed_extension_protocol_options


def test_simple_tls_defaults_to_system_roots_and_auto_sni() -> None:
    cluster = applied({"tls": {"mode": "SIMPLE"}})
    combined = tls_of(cluster).common_tls_context.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == f"file-root:{SYSTEM_CA_BUNDLE}"
    upstream = options_of(cluster).upstream_http_protocol_options
    assert (upstream.auto_sni, upstream.auto_san_validation) == (True, True)
    # With SANs, Envoy checks those instead of the host.
    upstream = options_of(applied({"tls": {"mode": "SIMPLE", "subjectAltNames": ["a"]}})).upstream_http_protocol_options
    assert (upstream.auto_sni, upstream.auto_san_validation) == (True, False)


def test_insecure_skip_verify_accepts_any_server_certificate() -> None:
    cluster = applied({"tls": {"mode": "SIMPLE", "insecureSkipVerify": True}})
    context = tls_of(cluster).common_tls_context
    assert context.WhichOneof("validation_context_type") == "validation_context"
    assert context.validation_context == common_pb2.CertificateValidationContext()
    assert not options_of(cluster).upstream_http_protocol_options.auto_san_validation


def test_mutual_tls_with_files_and_h2_alpn() -> None:
    cluster = applied({"tls": {"mode": "MUTUAL", "clientCertificate": "/c.pem", "privateKey": "/k.pem",
                               "caCertificates": "/ca.pem", "sni": "s"}}, http2=True)
    common = tls_of(cluster).common_tls_context
    [certificate] = common.tls_certificate_sds_secret_configs
    assert certificate.name == "file-cert:/c.pem~/k.pem"
    assert not common.tls_certificates
    assert common.combined_validation_context.validation_context_sds_secret_config.name == "file-root:/ca.pem"
    assert list(common.alpn_protocols) == ["h2"]


def test_credential_name_asks_the_agent_for_istio_named_secrets() -> None:
    common = tls_of(applied({"tls": {"mode": "MUTUAL", "credentialName": "egress", "sni": "s",
                                     "subjectAltNames": ["s"]}})).common_tls_context
    [certificate] = common.tls_certificate_sds_secret_configs
    assert certificate.name == "kubernetes://egress"
    [grpc] = certificate.sds_config.api_config_source.grpc_services
    assert grpc.envoy_grpc.cluster_name == "sds-grpc"
    combined = common.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == "kubernetes://egress-cacert"
    assert {m.matcher.exact for m in combined.default_validation_context.match_typed_subject_alt_names} == {"s"}
    # Without verification only the certificate is asked for.
    common = tls_of(applied({"tls": {"mode": "SIMPLE", "credentialName": "c", "sni": "s",
                                     "insecureSkipVerify": True}})).common_tls_context
    assert [c.name for c in common.tls_certificate_sds_secret_configs] == ["kubernetes://c"]
    assert common.WhichOneof("validation_context_type") is None


@pytest.mark.parametrize(("credential", "resource"), [
    ("egress", "kubernetes://egress"), ("ns/egress", "kubernetes://ns/egress"),
    ("kubernetes://ns/egress", "kubernetes://ns/egress"), ("configmap://ns/ca", "configmap://ns/ca"),
    ("kubernetes-gateway://ns/gw", "kubernetes-gateway://ns/gw"), ("builtin://", "default"),
])
def test_credential_names_become_istio_resource_names(credential: str, resource: str) -> None:
    common = tls_of(applied({"tls": {"mode": "MUTUAL", "credentialName": credential, "sni": "s"}})).common_tls_context
    assert common.tls_certificate_sds_secret_configs[0].name == resource


# -- through the call site -------------------------------------------------------------------

SERVICE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  trafficPolicy:
    connectionPool: {http: {idleTimeout: 1m30s}}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {consistentHash: {httpCookie: {name: c, ttl: 100ms}}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}
"""


def test_outbound_clusters_apply_the_merged_policy() -> None:
    result = parse_text(SERVICE, "test")
    assert result.ok, result.errors()
    push = PushContext.build(ConfigSnapshot(1, {r.key: r for _, r in result.resources}), MeshConfig())
    built = {b.cluster.name: b.cluster for b in clusters.outbound_clusters(push, list(push.services.values()))}
    http = built["outbound|80||web.default.svc.cluster.local"]
    assert options_of(http).common_http_protocol_options.idle_timeout.seconds == 90
    grpc = built["outbound|9090||web.default.svc.cluster.local"]
    assert grpc.lb_policy == Cluster.RING_HASH
    # The port-level entry replaced connectionPool: no idle timeout, the HTTP/2 options kept.
    assert not options_of(grpc).common_http_protocol_options.HasField("idle_timeout")
    assert options_of(grpc).explicit_http_config.HasField("http2_protocol_options")
    subset = built["outbound|80|v1|web.default.svc.cluster.local"]
    assert subset.outlier_detection.consecutive_5xx.value == 3
    assert options_of(subset).common_http_protocol_options.idle_timeout.seconds == 90
    assert not built["outbound|80||web.default.svc.cluster.local"].HasField("outlier_detection")
    subset_grpc = built["outbound|9090|v1|web.default.svc.cluster.local"]
    assert (subset_grpc.lb_policy, subset_grpc.outlier_detection.consecutive_5xx.value) == (Cluster.RING_HASH, 3)
