"""Gateway translation, pure: servers merged per port, TLS contexts (files and SDS), SNI
filter chains, passthrough and TCP routes, AUTO_PASSTHROUGH."""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2

from libs.config import parse_text
from libs.envoy import LISTENER_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import gateway, generator
from services.pilot.networking.gateway_servers import merge
from services.pilot.networking.gateway_tls import credential_resource_name, downstream_tls_context

PROXY = Proxy(id="router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local", type=NodeType.ROUTER,
              ip="127.0.0.1", pod="gw", namespace="istio-system", dns_domain="istio-system.svc.cluster.local",
              labels=(("istio", "ingressgateway"),), bind_address="127.0.0.1")

SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  subsets: [{name: v1, labels: {version: v1}}]
"""


def push_of(*documents: str) -> PushContext:
    result = parse_text("---\n".join([SERVICES, *documents]), "test")
    assert result.ok, result.errors()
    return PushContext.build(ConfigSnapshot(1, {r.key: r for _, r in result.resources}), MeshConfig())


def gateway_doc(servers: str, name: str = "gw", namespace: str = "default") -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
{servers}"""


def vs_doc(name: str, body: str, hosts: str = '["*"]', gateways: str = "[gw]") -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: {hosts}
  gateways: {gateways}
{body}"""


HTTPS_A = """\
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, serverCertificate: /certs/a.pem, privateKey: /certs/a.key}
"""
WEB_ROUTE = "  http: [{route: [{destination: {host: web}}]}]\n"


def listener(out: gateway.GatewayOutput, port: int) -> listener_pb2.Listener:
    return next(item for item in out.listeners if item.name == f"127.0.0.1_{port}")


def tls_context(chain: listener_pb2.FilterChain) -> tls_pb2.DownstreamTlsContext:
    context = tls_pb2.DownstreamTlsContext()
    assert chain.transport_socket.typed_config.Unpack(context)
    return context


def manager(chain: listener_pb2.FilterChain) -> hcm.HttpConnectionManager:
    unpacked = hcm.HttpConnectionManager()
    assert chain.filters[0].typed_config.Unpack(unpacked)
    return unpacked


def tcp_proxy(chain: listener_pb2.FilterChain) -> tcp_proxy_pb2.TcpProxy:
    unpacked = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[0].typed_config.Unpack(unpacked)
    return unpacked


# -- merging -------------------------------------------------------------------------------

def test_http_and_https_servers_of_two_gateways_get_their_own_listeners_and_routes() -> None:
    push = push_of(
        gateway_doc("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n", name="plain"),
        gateway_doc(HTTPS_A, name="secure"),
        vs_doc("web", WEB_ROUTE, gateways="[plain, secure]"),
    )
    out = gateway.build(PROXY, push)
    assert [item.name for item in out.listeners] == ["127.0.0.1_80", "127.0.0.1_443"]
    assert sorted(r.name for r in out.routes) == ["http.80", "https.443.https-a.secure.default"]
    assert manager(listener(out, 443).filter_chains[0]).rds.route_config_name == "https.443.https-a.secure.default"
    assert out.warnings == []


def test_conflicting_protocols_on_one_port_keep_the_first_and_name_both() -> None:
    push = push_of(
        gateway_doc("  - port: {number: 8000, name: http, protocol: HTTP}\n    hosts: ['*']\n", name="a"),
        gateway_doc("  - port: {number: 8000, name: tcp, protocol: TCP}\n    hosts: ['*']\n", name="b"),
    )
    merged = merge(push.gateways())
    assert [(g.number, [s.protocol for s in g.servers]) for g in merged.ports] == [(8000, ["HTTP"])]
    assert merged.warnings == [
        "Gateway default/b spec.servers[0]: port 8000 (TCP) conflicts with Gateway default/a spec.servers[0] "
        "(HTTP), which serves it; skipped"]


def test_http_servers_on_one_port_share_a_route_and_tls_servers_need_distinct_hosts() -> None:
    push = push_of(gateway_doc(HTTPS_A + HTTPS_A.replace("https-a", "https-a2") + """\
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [a.example.com]
  - port: {number: 80, name: http2, protocol: HTTP2}
    hosts: [./b.example.com, "*/c.example.com"]
"""))
    merged = merge(push.gateways())
    assert [(g.number, len(g.servers)) for g in merged.ports] == [(80, 2), (443, 1)]
    assert sorted(set(merged.route_names.values())) == ["http.80", "https.443.https-a.gw.default"]
    assert merged.ports[0].servers[1].hosts == ("default/b.example.com", "c.example.com")
    assert merged.warnings == ["Gateway default/gw spec.servers[1]: host(s) a.example.com on port 443 are already "
                               "served by Gateway default/gw spec.servers[0]; skipped"]


def test_a_gateway_selecting_other_proxies_is_ignored() -> None:
    push = push_of(gateway_doc(HTTPS_A).replace("istio: ingressgateway", "istio: egressgateway"))
    assert gateway.build(PROXY, push).listeners == []


# -- HTTPS -----------------------------------------------------------------------------------

def test_simple_https_terminates_with_files_for_its_sni_hosts() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc(HTTPS_A), vs_doc("web", WEB_ROUTE, hosts="[a.example.com]")))
    built = listener(out, 443)
    assert [f.name for f in built.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    chain = built.filter_chains[0]
    assert list(chain.filter_chain_match.server_names) == ["a.example.com"]
    context = tls_context(chain)
    # Files come from the agent's SDS (Istio's file-cert:), never as Envoy `filename`s.
    assert [_sds_target(c) for c in context.common_tls_context.tls_certificate_sds_secret_configs] == [
        ("file-cert:/certs/a.pem~/certs/a.key", "sds-grpc", False)]
    assert not context.common_tls_context.tls_certificates
    assert list(context.common_tls_context.alpn_protocols) == ["h2", "http/1.1"]
    assert not context.require_client_certificate.value
    assert context.common_tls_context.WhichOneof("validation_context_type") is None
    route = next(r for r in out.routes if r.name == "https.443.https-a.gw.default")
    assert [list(v.domains) for v in route.virtual_hosts] == [["a.example.com"]]
    assert route.ignore_port_in_host_matching
    assert out.references["https.443.https-a.gw.default"] == {"outbound|80||web.default.svc.cluster.local"}


def test_a_wildcard_host_matches_any_sni() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc(HTTPS_A.replace("[a.example.com]", '["*"]'))))
    assert not listener(out, 443).filter_chains[0].HasField("filter_chain_match")


def test_mutual_requires_and_verifies_client_certificates() -> None:
    warnings: list[str] = []
    context = downstream_tls_context({
        "mode": "MUTUAL", "serverCertificate": "/c.pem", "privateKey": "/c.key", "caCertificates": "/ca.pem",
        "caCrl": "/crl.pem", "subjectAltNames": ["spiffe://td/ns/a/sa/b"], "verifyCertificateSpki": ["spki"],
        "minProtocolVersion": "TLSV1_2", "maxProtocolVersion": "TLSV1_3",
        "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256", "NOT-A-CIPHER", "ECDHE-RSA-AES128-GCM-SHA256"],
    }, http=True, where="server", warnings=warnings)
    assert context is not None
    assert context.require_client_certificate.value
    combined = context.common_tls_context.combined_validation_context
    assert _sds_target(combined.validation_context_sds_secret_config) == ("file-root:/ca.pem", "sds-grpc", False)
    validation = combined.default_validation_context
    assert (validation.HasField("trusted_ca"), validation.crl.filename) == (False, "/crl.pem")
    assert list(validation.verify_certificate_spki) == ["spki"]
    assert {(m.san_type, m.matcher.exact) for m in validation.match_typed_subject_alt_names} == {
        (common_pb2.SubjectAltNameMatcher.DNS, "spiffe://td/ns/a/sa/b"),
        (common_pb2.SubjectAltNameMatcher.URI, "spiffe://td/ns/a/sa/b")}
    params = context.common_tls_context.tls_params
    assert (params.tls_minimum_protocol_version, params.tls_maximum_protocol_version) == (
        common_pb2.TlsParameters.TLSv1_2, common_pb2.TlsParameters.TLSv1_3)
    assert list(params.cipher_suites) == ["ECDHE-RSA-AES128-GCM-SHA256"]
    assert warnings == ["server: cipher suite 'NOT-A-CIPHER' is not one Envoy knows; ignored"]


def test_optional_mutual_verifies_without_requiring() -> None:
    context = downstream_tls_context({"mode": "OPTIONAL_MUTUAL", "serverCertificate": "/c.pem",
                                      "privateKey": "/c.key", "caCertificates": "/ca.pem"},
                                     http=True, where="server", warnings=[])
    assert context is not None
    assert not context.require_client_certificate.value
    assert context.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name == (
        "file-root:/ca.pem")


def test_simple_ignores_client_checks_with_a_warning() -> None:
    warnings: list[str] = []
    context = downstream_tls_context({"mode": "SIMPLE", "serverCertificate": "/c.pem", "privateKey": "/c.key",
                                      "subjectAltNames": ["x"]}, http=False, where="server", warnings=warnings)
    assert context is not None
    assert context.common_tls_context.WhichOneof("validation_context_type") is None
    assert list(context.common_tls_context.alpn_protocols) == []
    assert warnings == ["server: SIMPLE TLS does not ask clients for certificates; subjectAltNames and certificate "
                        "pins are ignored"]


def _sds_target(config: secret_pb2.SdsSecretConfig) -> tuple[str, str, bool]:
    source = config.sds_config
    assert source.resource_api_version == config_source_pb2.V3
    api = source.api_config_source
    assert (api.api_type, api.transport_api_version) == (api.GRPC, config_source_pb2.V3)
    assert api.set_node_on_first_message_only
    return config.name, api.grpc_services[0].envoy_grpc.cluster_name, source.HasField("initial_fetch_timeout")


def test_credential_name_is_fetched_from_the_agent_sds() -> None:
    context = downstream_tls_context({"mode": "MUTUAL", "credentialName": "web-cert",
                                      "subjectAltNames": ["client.example.com"]},
                                     http=True, where="server", warnings=[])
    assert context is not None
    common = context.common_tls_context
    assert [_sds_target(c) for c in common.tls_certificate_sds_secret_configs] == [
        ("kubernetes://web-cert", "sds-grpc", False)]
    combined = common.combined_validation_context
    assert _sds_target(combined.validation_context_sds_secret_config) == (
        "kubernetes://web-cert-cacert", "sds-grpc", False)
    assert {m.matcher.exact for m in combined.default_validation_context.match_typed_subject_alt_names} == {
        "client.example.com"}
    assert not common.tls_certificates
    assert context.require_client_certificate.value


def test_credential_names_give_one_certificate_each() -> None:
    context = downstream_tls_context({"mode": "SIMPLE", "credentialNames": ["rsa", "kubernetes://ns/ecdsa"]},
                                     http=True, where="server", warnings=[])
    assert context is not None
    assert [c.name for c in context.common_tls_context.tls_certificate_sds_secret_configs] == [
        "kubernetes://rsa", "kubernetes://ns/ecdsa"]
    assert not context.common_tls_context.HasField("combined_validation_context")


def test_credential_resource_names_follow_istio() -> None:
    assert credential_resource_name("cert") == "kubernetes://cert"
    assert credential_resource_name("kubernetes-gateway://ns/cert") == "kubernetes-gateway://ns/cert"
    assert credential_resource_name("builtin://") == "default"


def test_istio_mutual_uses_the_workload_certificate_and_roots() -> None:
    context = downstream_tls_context({"mode": "ISTIO_MUTUAL"}, http=True, where="server", warnings=[])
    assert context is not None
    common = context.common_tls_context
    assert [_sds_target(c) for c in common.tls_certificate_sds_secret_configs] == [("default", "sds-grpc", True)]
    assert _sds_target(common.combined_validation_context.validation_context_sds_secret_config) == (
        "ROOTCA", "sds-grpc", True)
    assert context.require_client_certificate.value


def test_https_redirect_covers_server_hosts_without_virtual_services() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc("""\
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [a.example.com, b.example.com]
    tls: {httpsRedirect: true}
"""), vs_doc("web", WEB_ROUTE, hosts="[a.example.com]")))
    route = out.routes[0]
    assert [(v.name, v.require_tls, len(v.routes)) for v in route.virtual_hosts] == [
        ("a.example.com:80", route.virtual_hosts[0].ALL, 1), ("b.example.com:80", route.virtual_hosts[0].ALL, 0)]


# -- passthrough and TCP ------------------------------------------------------------------------

PASSTHROUGH = """\
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*.example.com"]
    tls: {mode: PASSTHROUGH}
"""


def test_passthrough_chains_match_the_sni_hosts_of_tls_routes() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc(PASSTHROUGH), vs_doc("tls", """\
  tls:
  - match: [{sniHosts: [a.example.com]}]
    route: [{destination: {host: web, subset: v1}, weight: 60}, {destination: {host: db}, weight: 40}]
  - match: [{sniHosts: [b.example.com], port: 8443}]
    route: [{destination: {host: db}}]
""", hosts="[a.example.com, b.example.com]")))
    built = listener(out, 443)
    assert len(built.filter_chains) == 1
    chain = built.filter_chains[0]
    assert list(chain.filter_chain_match.server_names) == ["a.example.com"]
    assert not chain.HasField("transport_socket")
    assert [(c.name, c.weight) for c in tcp_proxy(chain).weighted_clusters.clusters] == [
        ("outbound|80|v1|web.default.svc.cluster.local", 60), ("outbound|5432||db.default.svc.cluster.local", 40)]
    assert out.references["127.0.0.1_443"] == {"outbound|80|v1|web.default.svc.cluster.local",
                                               "outbound|5432||db.default.svc.cluster.local"}


def test_a_second_chain_for_the_same_sni_is_dropped_with_a_warning() -> None:
    route = "  tls: [{match: [{sniHosts: [a.example.com]}], route: [{destination: {host: db}}]}]\n"
    out = gateway.build(PROXY, push_of(gateway_doc(PASSTHROUGH), vs_doc("first", route, hosts="[a.example.com]"),
                                       vs_doc("second", route, hosts="[a.example.com]")))
    assert len(listener(out, 443).filter_chains) == 1
    assert out.warnings == ["VirtualService default/second spec.tls[0].match[0]: its filter chain on listener "
                            "127.0.0.1_443 matches the same connections as VirtualService default/first "
                            "spec.tls[0].match[0]'s; skipped"]


def test_tcp_without_a_route_gets_no_listener() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc("  - port: {number: 27017, name: mongo, protocol: MONGO}\n"
                                                   "    hosts: ['*']\n")))
    assert out.listeners == []
    assert out.warnings == ["Gateway default/gw spec.servers[0]: no VirtualService tcp route is bound to it; "
                            "port 27017 gets no filter chain for it"]


def test_tcp_routes_by_subnet_until_the_first_rule_without_one() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc("  - port: {number: 5432, name: tcp, protocol: TCP}\n"
                                                   "    hosts: ['*']\n"), vs_doc("tcp", """\
  tcp:
  - match: [{port: 9999}]
    route: [{destination: {host: web}}]
  - match: [{destinationSubnets: [10.1.2.3/16, 192.168.0.1]}]
    route: [{destination: {host: web}}]
  - route: [{destination: {host: db}}]
  - route: [{destination: {host: web}}]
""")))
    chains = listener(out, 5432).filter_chains
    assert [[(r.address_prefix, r.prefix_len.value) for r in c.filter_chain_match.prefix_ranges] for c in chains] == [
        [("10.1.0.0", 16), ("192.168.0.1", 32)], []]
    assert [tcp_proxy(c).cluster for c in chains] == ["outbound|80||web.default.svc.cluster.local",
                                                      "outbound|5432||db.default.svc.cluster.local"]
    assert not listener(out, 5432).listener_filters


def test_tls_terminated_tcp_forwards_decrypted_bytes() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc("""\
  - port: {number: 5433, name: tls, protocol: TLS}
    hosts: [db.example.com]
    tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /c.key}
"""), vs_doc("tcp", "  tcp: [{route: [{destination: {host: db}}]}]\n", hosts="[db.example.com]")))
    chain = listener(out, 5433).filter_chains[0]
    assert list(chain.filter_chain_match.server_names) == ["db.example.com"]
    assert tls_context(chain).common_tls_context.tls_certificate_sds_secret_configs[0].name == (
        "file-cert:/c.pem~/c.key")
    assert tcp_proxy(chain).cluster == "outbound|5432||db.default.svc.cluster.local"


def test_an_unknown_destination_closes_connections_with_a_warning() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc("  - port: {number: 5432, name: tcp, protocol: TCP}\n"
                                                   "    hosts: ['*']\n"),
                                       vs_doc("tcp", "  tcp: [{route: [{destination: {host: nowhere}}]}]\n")))
    assert tcp_proxy(listener(out, 5432).filter_chains[0]).cluster == "BlackHoleCluster"
    assert out.warnings == [
        "VirtualService default/tcp: spec.tcp[0].route[0].destination: host nowhere.default.svc.cluster.local "
        "is not a known service; skipped",
        "VirtualService default/tcp: spec.tcp[0]: no destination can be reached; connections are closed"]


def test_auto_passthrough_routes_sidecar_sni_per_service_and_subset() -> None:
    out = gateway.build(PROXY, push_of(gateway_doc("""\
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ["*.default.svc.cluster.local"]
    tls: {mode: AUTO_PASSTHROUGH}
""")))
    chains = listener(out, 15443).filter_chains
    assert [(list(c.filter_chain_match.server_names), tcp_proxy(c).cluster) for c in chains] == [
        (["outbound_.5432_._.db.default.svc.cluster.local"], "outbound|5432||db.default.svc.cluster.local"),
        (["outbound_.80_._.web.default.svc.cluster.local"], "outbound|80||web.default.svc.cluster.local"),
        (["outbound_.80_.v1_.web.default.svc.cluster.local"], "outbound|80|v1|web.default.svc.cluster.local"),
    ]
    assert "istio" in chains[0].filter_chain_match.application_protocols


def test_generated_gateway_config_is_consistent() -> None:
    config = generator.generate(PROXY, push_of(gateway_doc(HTTPS_A + PASSTHROUGH.replace("443", "8443")),
                                               vs_doc("web", WEB_ROUTE, hosts="[a.example.com]"),
                                               vs_doc("tls", "  tls: [{match: [{sniHosts: [b.example.com]}], "
                                                             "route: [{destination: {host: db}}]}]\n",
                                                      hosts="[b.example.com]")))
    assert sorted(config.resources[LISTENER_TYPE]) == ["127.0.0.1_443", "127.0.0.1_8443"]
    assert config.route_names == {"https.443.https-a.gw.default"}
    assert config.references["127.0.0.1_8443"] == {"outbound|5432||db.default.svc.cluster.local"}
