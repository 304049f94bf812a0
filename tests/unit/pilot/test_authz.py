"""AuthorizationPolicy and RequestAuthentication as Envoy filters, pure: which policies
reach which proxy, in which filter, in which order.  What Envoy does with them is checked
with real traffic in tests/integration/pilot/test_authz*.py."""

from __future__ import annotations

from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac
from google.protobuf import json_format

from libs.config import parse_text
from libs.envoy import CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.networking import generator
from tests.unit.config.test_mesh_config import configmap

SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 5432, name: tcp-db, protocol: TCP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext-authz, namespace: default}
spec:
  hosts: [ext-authz.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9000, name: grpc, protocol: GRPC}]
  endpoints: [{address: 10.0.9.9}]
"""
WORKLOADS = (WorkloadInstance(name="reviews-1", namespace="default", address="10.0.0.1",
                              labels=(("app", "reviews"),), sidecar=True),)
PROVIDERS = """\
extensionProviders:
- {name: authz-grpc, envoyExtAuthzGrpc: {service: ext-authz.default.svc.cluster.local, port: 9000}}
"""


def policy(name: str, spec: str, *, namespace: str = "default", annotations: str = "") -> str:
    return (f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, "
            f"namespace: {namespace}{', annotations: ' + annotations if annotations else ''}}}\nspec: {spec}\n")


def push_of(*documents: str) -> PushContext:
    result = parse_text("---\n".join([SERVICES, configmap(PROVIDERS), *documents]), "test")
    assert result.ok, result.errors()
    snapshot = ConfigSnapshot(1, {r.key: r for _, r in result.resources})
    mesh = mesh_from_config(snapshot.of_kind("MeshConfig"), MeshConfig(), "istio-system")
    return PushContext.build(snapshot, mesh, workloads=WORKLOADS)


def reviews(namespace: str = "default", **labels: str) -> Proxy:
    return Proxy(id=f"sidecar~10.0.0.1~reviews-1.{namespace}~{namespace}.svc.cluster.local", type=NodeType.SIDECAR,
                 ip="10.0.0.1", pod="reviews-1", namespace=namespace, dns_domain=f"{namespace}.svc.cluster.local",
                 labels=tuple(sorted((labels or {"app": "reviews"}).items())), interception="REDIRECT")


def inbound(push: PushContext, proxy: Proxy | None = None) -> listener_pb2.Listener:
    config = generator.generate(proxy or reviews(), push)
    return config.resources[LISTENER_TYPE]["virtualInbound"]


def chain(listener: listener_pb2.Listener, name: str) -> Any:
    return next(c for c in listener.filter_chains if c.name == name)


def http_filters(listener: listener_pb2.Listener, chain_name: str = "inbound|9080|plaintext") -> list[Any]:
    manager = hcm.HttpConnectionManager()
    chain(listener, chain_name).filters[0].typed_config.Unpack(manager)
    return list(manager.http_filters)


def unpack(any_message: Any, message_type: type) -> Any:
    message = message_type()
    assert any_message.Unpack(message)
    return message


def rbac_of(push: PushContext, proxy: Proxy | None = None, route: str = "inbound|9080||") -> list[http_rbac.RBAC]:
    """The rules the AUDIT, DENY and ALLOW filters enforce, as the route configuration carries them."""
    config = generator.generate(proxy or reviews(), push).resources[ROUTE_TYPE][route]
    return [unpack(config.typed_per_filter_config[name], http_rbac.RBACPerRoute).rbac
            for name in ("envoy.filters.http.rbac.audit", "envoy.filters.http.rbac.deny",
                         "envoy.filters.http.rbac.allow") if name in config.typed_per_filter_config]


def tcp_rbac_of(listener: listener_pb2.Listener) -> list[network_rbac.RBAC]:
    return [unpack(f.typed_config, network_rbac.RBAC) for f in chain(listener, "inbound|5432|plaintext").filters
            if f.name == "envoy.filters.network.rbac"]


def test_no_policy_no_rules() -> None:
    assert rbac_of(push_of()) == []
    assert tcp_rbac_of(inbound(push_of())) == []
    # The HTTP filters are there all the same, so the first policy is a route update, not a listener one.
    assert [f.name for f in http_filters(inbound(push_of()))][:3] == [
        "envoy.filters.http.rbac.audit", "envoy.filters.http.rbac.deny", "envoy.filters.http.rbac.allow"]
    assert all(not unpack(f.typed_config, http_rbac.RBAC).HasField("rules") for f in http_filters(inbound(push_of()))
               if f.name.startswith("envoy.filters.http.rbac"))


def test_allow_nothing_is_an_allow_filter_without_policies() -> None:
    [rbac] = rbac_of(push_of(policy("allow-nothing", "{}")))
    assert rbac.HasField("rules") and rbac.rules.action == 0 and not rbac.rules.policies
    [tcp] = tcp_rbac_of(inbound(push_of(policy("allow-nothing", "{}"))))
    assert tcp.HasField("rules") and not tcp.rules.policies and tcp.stat_prefix == "tcp."


def test_scope_root_namespace_own_namespace_and_selector() -> None:
    push = push_of(policy("mesh", "{rules: [{}]}", namespace="istio-system"),
                   policy("ns", "{rules: [{}]}"),
                   policy("mine", "{selector: {matchLabels: {app: reviews}}, rules: [{}]}"),
                   policy("theirs", "{selector: {matchLabels: {app: ratings}}, rules: [{}]}"),
                   policy("elsewhere", "{rules: [{}]}", namespace="other"))
    [rbac] = rbac_of(push)
    assert sorted(rbac.rules.policies) == ["ns[default]-policy[mine]-rule[0]", "ns[default]-policy[ns]-rule[0]",
                                           "ns[istio-system]-policy[mesh]-rule[0]"]
    assert rbac_of(push, reviews(app="ratings"))[0].rules.policies.keys() >= {"ns[default]-policy[theirs]-rule[0]"}


def test_filter_order_is_jwt_custom_audit_deny_allow_then_fault() -> None:
    push = push_of(
        policy("ext", "{action: CUSTOM, provider: {name: authz-grpc}, rules: [{to: [{operation: {paths: [/x]}}]}]}"),
        policy("audit", "{action: AUDIT, rules: [{}]}"),
        policy("deny", "{action: DENY, rules: [{to: [{operation: {methods: [DELETE]}}]}]}"),
        policy("allow", "{rules: [{}]}"),
        """apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec: {jwtRules: [{issuer: a@b, jwks: '{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}'}]}
""")
    filters = http_filters(inbound(push))
    assert [f.name for f in filters] == [
        "envoy.filters.http.jwt_authn", "envoy.filters.http.rbac", "envoy.filters.http.ext_authz",
        "envoy.filters.http.rbac.audit", "envoy.filters.http.rbac.deny", "envoy.filters.http.rbac.allow",
        "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router"]
    custom = unpack(filters[1].typed_config, http_rbac.RBAC)
    audit, deny, allow = rbac_of(push)
    assert not custom.HasField("rules") and custom.shadow_rules_stat_prefix == "istio_ext_authz_"
    assert list(custom.shadow_rules.policies) == ["istio-ext-authz-ns[default]-policy[ext]-rule[0]"]
    assert (audit.rules.action, deny.rules.action, allow.rules.action) == (2, 1, 0)  # LOG, DENY, ALLOW
    ext = unpack(filters[2].typed_config, ext_authz_pb2.ExtAuthz)
    assert ext.grpc_service.envoy_grpc.cluster_name == "outbound|9000||ext-authz.default.svc.cluster.local"
    assert ext.filter_enabled_metadata.path[0].key == "istio_ext_authz_shadow_effective_policy_id"


def test_tcp_drops_http_only_allow_rules_and_widens_deny_rules() -> None:
    push = push_of(policy("allow-get", "{rules: [{to: [{operation: {methods: [GET]}}]}, "
                                       "{from: [{source: {namespaces: [prod]}}]}]}"),
                   policy("deny-delete", "{action: DENY, rules: [{to: [{operation: {methods: [DELETE], "
                                         "ports: ['5432']}}]}]}"))
    deny, allow = tcp_rbac_of(inbound(push))
    # The ALLOW rule that needs a method can never match on TCP: only the namespace rule remains.
    assert list(allow.rules.policies) == ["ns[default]-policy[allow-get]-rule[1]"]
    # The DENY rule keeps what TCP has (the port) and drops the method: it denies more, not less.
    permission = json_format.MessageToDict(deny.rules.policies["ns[default]-policy[deny-delete]-rule[0]"])
    assert permission["permissions"] == [{"andRules": {"rules": [{"orRules": {"rules": [{"destinationPort": 5432}]}}]}}]
    config = generator.generate(reviews(), push)
    assert any("methods is HTTP only" in w for w in config.warnings)


def test_dry_run_policies_are_shadow_rules_only() -> None:
    push = push_of(policy("try-deny", "{action: DENY, rules: [{}]}", annotations='{"istio.io/dry-run": "true"}'))
    [rbac] = rbac_of(push)
    assert not rbac.HasField("rules")
    assert rbac.shadow_rules.action == 1 and rbac.shadow_rules_stat_prefix == "istio_dry_run_deny_"


def test_custom_with_an_unknown_provider_fails_closed() -> None:
    push = push_of(policy("ext", "{action: CUSTOM, provider: {name: nobody}, rules: [{to: [{operation: "
                                 "{paths: [/admin*]}}]}]}"))
    [rbac] = rbac_of(push)
    assert rbac.rules.action == 1 and list(rbac.rules.policies) == ["ns[default]-policy[ext]-rule[0]"]
    assert any("provider 'nobody'" in w for w in generator.generate(reviews(), push).warnings)


def test_jwks_uri_gets_a_cluster_and_tokens_are_optional_until_policy_requires_them() -> None:
    push = push_of("""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec: {jwtRules: [{issuer: issuer-1, jwksUri: "http://127.0.0.1:8123/jwks.json", forwardOriginalToken: true,
       fromHeaders: [{name: x-jwt, prefix: "Bearer "}], outputClaimToHeaders: [{header: x-sub, claim: sub}]}]}
""")
    config = generator.generate(reviews(), push)
    [jwt_filter] = [f for f in http_filters(config.resources[LISTENER_TYPE]["virtualInbound"])
                    if f.name == "envoy.filters.http.jwt_authn"]
    authn = unpack(jwt_filter.typed_config, jwt_pb2.JwtAuthentication)
    [provider] = authn.providers.values()
    assert provider.issuer == "issuer-1" and provider.forward and provider.payload_in_metadata == "payload"
    assert provider.remote_jwks.http_uri.cluster == "jwks|127.0.0.1|8123"
    assert [(h.name, h.value_prefix) for h in provider.from_headers] == [("x-jwt", "Bearer ")]
    requirements = authn.rules[0].requires.requires_any.requirements
    assert requirements[-1].HasField("allow_missing")
    cluster = config.resources[CLUSTER_TYPE]["jwks|127.0.0.1|8123"]
    assert cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 8123
    # The listener that calls it names it, so it is sent before the listener (make before break).
    assert "jwks|127.0.0.1|8123" in config.references["virtualInbound"]


def test_gateways_are_selected_like_workloads() -> None:
    gateway = Proxy(id="router~10.0.1.1~ingress.istio-system~istio-system.svc.cluster.local", type=NodeType.ROUTER,
                    ip="10.0.1.1", pod="ingress", namespace="istio-system", dns_domain="istio-system.svc.cluster.local",
                    labels=(("istio", "ingressgateway"),))
    push = push_of(policy("ingress", "{selector: {matchLabels: {istio: ingressgateway}}, action: DENY, rules: "
                                     "[{from: [{source: {remoteIpBlocks: [1.2.3.4]}}]}]}", namespace="istio-system"),
                   """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
""")
    [listener] = generator.generate(gateway, push).resources[LISTENER_TYPE].values()
    manager = unpack(listener.filter_chains[0].filters[0].typed_config, hcm.HttpConnectionManager)
    assert [f.name for f in manager.http_filters][1] == "envoy.filters.http.rbac.deny"
    assert manager.use_remote_address.value and manager.xff_num_trusted_hops == 0
    [deny] = rbac_of(push, gateway, route="http.8080")
    assert list(deny.rules.policies) == ["ns[istio-system]-policy[ingress]-rule[0]"]



def test_a_principal_written_with_spiffe_is_kept_as_istio_reads_it_and_warned_about() -> None:
    push = push_of(policy("viewer", """{rules: [{from: [{source: {principals: [spiffe://cluster.local/ns/a/sa/b],
        notPrincipals: [cluster.local/ns/a/sa/c]}}], when: [{key: source.principal,
        notValues: [spiffe://cluster.local/ns/a/sa/d]}]}]}"""))
    warnings = generator.generate(reviews(), push).warnings
    assert [w for w in warnings if "spiffe://" in w] == [
        "AuthorizationPolicy default/viewer spec.rules[0].from[0].source.principals: "
        "'spiffe://cluster.local/ns/a/sa/b' starts with spiffe://, which Istio adds itself "
        "(write trust-domain/ns/NS/sa/SA), so it never matches",
        "AuthorizationPolicy default/viewer spec.rules[0].when[0]: 'spiffe://cluster.local/ns/a/sa/d' starts with "
        "spiffe://, which Istio adds itself (write trust-domain/ns/NS/sa/SA), so it never matches"]
    # As under Istio, the prefix is added again: the rule asks for an identity no peer has.
    [allow] = rbac_of(push)
    rendered = json_format.MessageToDict(allow)
    assert "spiffe://spiffe://cluster.local/ns/a/sa/b" in str(rendered)
