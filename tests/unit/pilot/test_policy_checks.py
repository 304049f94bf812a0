"""Mixer's check and quota filters on a workload's inbound HTTP chain, pure: only where a
rule may apply or a QuotaSpecBinding binds the workload's service, failing closed unless
the mesh or the pod says otherwise, calling the policy service through the right cluster.
What Envoy does with them is judged with real traffic in tests/integration/policy."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.ratelimit.v3 import rate_limit_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import json_format

from libs.config import parse_text
from libs.envoy import CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig, mesh_from_config
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.serviceentry import WorkloadInstance
from services.pilot.networking import generator
from services.pilot.networking.generator import ProxyConfig
from services.pilot.networking.memo import TranslationMemo
from tests.unit.config.test_mesh_config import configmap

POLICY_HOST = "istio-policy.istio-system.svc.cluster.local"
POLICY_CLUSTER = f"outbound|9091||{POLICY_HOST}"
CHECK, QUOTA = "istio.mixer.check", "istio.mixer.quota"
SERVICES = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: productpage, namespace: default}}
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: productpage}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: istio-policy, namespace: istio-system}}
spec:
  hosts: [{POLICY_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9091, name: grpc, protocol: GRPC}}]
  endpoints: [{{address: 10.0.9.1}}]
"""
WORKLOADS = tuple(WorkloadInstance(name=name, namespace="default", address=address, labels=(("app", app),),
                                   sidecar=True)
                  for name, address, app in (("reviews-v1", "10.0.0.1", "reviews"),
                                             ("reviews-v2", "10.0.0.2", "reviews"),
                                             ("productpage-v1", "10.0.0.3", "productpage"),
                                             ("ratings-v1", "10.0.0.4", "ratings")))
REGISTRY_SERVER = f"mixerCheckServer: {POLICY_HOST}:9091\n"


def doc(kind: str, name: str, spec: str, namespace: str = "istio-system") -> str:
    return (f"apiVersion: config.istio.io/v1alpha2\nkind: {kind}\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n")


def deny_rule(match: str = "", namespace: str = "istio-system") -> str:
    when = f"match: '{match}', " if match else ""
    return "---\n".join([
        doc("handler", "deny", "{compiledAdapter: denier, params: {status: {code: 7, message: denied}}}", namespace),
        doc("instance", "nothing", "{compiledTemplate: checknothing}", namespace),
        doc("rule", "deny", f"{{{when}actions: [{{handler: deny, instances: [nothing]}}]}}", namespace)])


FOR_REVIEWS = deny_rule('destination.labels["app"] == "reviews"')
FOR_RATINGS = deny_rule('destination.labels["app"] == "ratings"')
# Istio's productpage rate limit, its dimensions reading a header and a pseudo-header.
PRODUCTPAGE_QUOTA = "---\n".join([
    doc("handler", "quotahandler", "{compiledAdapter: memquota, params: {quotas: [{name: "
                                   "requestcountquota.instance.istio-system, maxAmount: 500, validDuration: 1s}]}}"),
    doc("instance", "requestcountquota", "{compiledTemplate: quota, params: {dimensions: {"
                                         "source: 'request.headers[\"X-Forwarded-For\"] | \"unknown\"', "
                                         "path: 'request.url_path | \"/\"', "
                                         "destination: 'destination.labels[\"app\"] | \"unknown\"'}}}"),
    doc("QuotaSpec", "request-count", "{rules: [{quotas: [{charge: 2, quota: requestcountquota}]}]}"),
    doc("QuotaSpecBinding", "request-count", "{quotaSpecs: [{name: request-count, namespace: istio-system}], "
                                             "services: [{name: productpage, namespace: default}]}"),
    doc("rule", "quota", "{actions: [{handler: quotahandler, instances: [requestcountquota]}]}"),
])


def push_of(*documents: str, mesh: str = REGISTRY_SERVER, services: str = SERVICES) -> PushContext:
    result = parse_text("---\n".join([services, configmap(mesh), *documents]), "test")
    assert result.errors() == []
    snapshot = ConfigSnapshot(1, {r.key: r for _, r in result.resources})
    mesh_config = mesh_from_config(snapshot.of_kind("MeshConfig"), MeshConfig(), "istio-system")
    return PushContext.build(snapshot, mesh_config, workloads=WORKLOADS)


def proxy(workload: str = "reviews-v1", **annotations: str) -> Proxy:
    found = next(w for w in WORKLOADS if w.name == workload)
    return Proxy(id=f"sidecar~{found.address}~{workload}-pod.default~default.svc.cluster.local",
                 type=NodeType.SIDECAR, ip=found.address, pod=f"{workload}-pod", namespace="default",
                 dns_domain="default.svc.cluster.local", labels=found.labels, workload_name=workload,
                 metadata={"ANNOTATIONS": annotations} if annotations else {})


def generate(push: PushContext, workload: str = "reviews-v1", **annotations: str) -> ProxyConfig:
    return generator.generate(proxy(workload, **annotations), push)


def http_filters(config: ProxyConfig) -> list[hcm.HttpFilter]:
    inbound = config.resources[LISTENER_TYPE]["virtualInbound"]
    chain = next(c for c in inbound.filter_chains if c.name == "inbound|9080|plaintext")
    manager = hcm.HttpConnectionManager()
    assert chain.filters[0].typed_config.Unpack(manager)
    return list(manager.http_filters)


def names(config: ProxyConfig) -> list[str]:
    return [f.name for f in http_filters(config)]


def policy_filter(config: ProxyConfig, name: str, message_type: type) -> Any:
    [found] = [f for f in http_filters(config) if f.name == name]
    message = message_type()
    assert found.typed_config.Unpack(message)
    return message


def check_filter(config: ProxyConfig) -> ext_authz_pb2.ExtAuthz:
    found: ext_authz_pb2.ExtAuthz = policy_filter(config, CHECK, ext_authz_pb2.ExtAuthz)
    return found


def quota_filter(config: ProxyConfig) -> rate_limit_pb2.RateLimit:
    found: rate_limit_pb2.RateLimit = policy_filter(config, QUOTA, rate_limit_pb2.RateLimit)
    return found


def rate_limits(config: ProxyConfig) -> list[list[rc.RateLimit]]:
    """The rate limits of every virtual host of the inbound route configuration."""
    return [list(vhost.rate_limits) for vhost in config.resources[ROUTE_TYPE]["inbound|9080||"].virtual_hosts]


def has_no_policy(config: ProxyConfig) -> bool:
    return (not {CHECK, QUOTA} & set(names(config)) and rate_limits(config) == [[]]
            and "mixer_server" not in config.resources[CLUSTER_TYPE])


# --- where the filters go --------------------------------------------------------------------


def test_no_mixer_check_server_no_filters() -> None:
    push = push_of(FOR_REVIEWS, PRODUCTPAGE_QUOTA, mesh="policyCheckFailOpen: false\n")
    assert has_no_policy(generate(push))
    assert has_no_policy(generate(push, "productpage-v1"))


def test_disable_policy_checks_means_no_filters() -> None:
    push = push_of(FOR_REVIEWS, PRODUCTPAGE_QUOTA, mesh=REGISTRY_SERVER + "disablePolicyChecks: true\n")
    assert has_no_policy(generate(push))
    assert has_no_policy(generate(push, "productpage-v1"))


def test_a_rule_for_another_app_adds_no_filter_and_no_hop() -> None:
    assert has_no_policy(generate(push_of(FOR_RATINGS)))


def test_a_namespaced_rule_of_another_namespace_adds_no_filter() -> None:
    assert has_no_policy(generate(push_of(deny_rule(namespace="prod"))))


def test_a_rule_that_may_apply_adds_the_check_after_the_rbac_filters() -> None:
    config = generate(push_of(FOR_REVIEWS))
    assert names(config) == ["envoy.filters.http.rbac.audit", "envoy.filters.http.rbac.deny",
                             "envoy.filters.http.rbac.allow", CHECK, "envoy.filters.http.fault",
                             "envoy.filters.http.cors", "envoy.filters.http.router"]
    check = check_filter(config)
    assert check.failure_mode_allow is False
    assert check.status_on_error.code == 503
    assert check.grpc_service.envoy_grpc.cluster_name == POLICY_CLUSTER
    assert check.include_peer_certificate
    assert rate_limits(config) == [[]]


def test_the_check_tells_the_policy_service_which_workload_asks() -> None:
    config = generate(push_of(FOR_REVIEWS))
    route = config.resources[ROUTE_TYPE]["inbound|9080||"]
    context = ext_authz_pb2.ExtAuthzPerRoute()
    assert route.typed_per_filter_config[CHECK].Unpack(context)
    assert dict(context.check_settings.context_extensions) == {
        "destination.workload": "reviews-v1.default", "destination.labels": '{"app": "reviews"}'}


def test_a_rule_depending_on_the_request_may_apply_so_it_is_checked() -> None:
    config = generate(push_of(deny_rule('source.labels["app"] == "productpage"')))
    assert CHECK in names(config)


def test_a_rule_on_the_service_name_checks_that_services_workloads() -> None:
    push = push_of(deny_rule('destination.service.name == "productpage"'))
    assert CHECK in names(generate(push, "productpage-v1"))
    assert CHECK not in names(generate(push))


def test_a_mesh_wide_rule_without_match_checks_every_workload() -> None:
    push = push_of(deny_rule())
    assert CHECK in names(generate(push)) and CHECK in names(generate(push, "productpage-v1"))


@pytest.mark.parametrize(("mesh", "annotations"), [
    (REGISTRY_SERVER + "policyCheckFailOpen: true\n", {}),
    (REGISTRY_SERVER, {"policy.istio.io/check": "allow-on-error"}),
])
def test_fail_open_from_the_mesh_or_the_pod(mesh: str, annotations: dict[str, str]) -> None:
    push = push_of(FOR_REVIEWS, PRODUCTPAGE_QUOTA, deny_rule(namespace="default"), mesh=mesh)
    assert check_filter(generate(push, **annotations)).failure_mode_allow is True
    assert quota_filter(generate(push, "productpage-v1", **annotations)).failure_mode_deny is False


def test_the_annotation_enable_is_the_default() -> None:
    config = generate(push_of(FOR_REVIEWS), **{"policy.istio.io/check": "enable"})
    assert check_filter(config).failure_mode_allow is False


def test_the_annotation_disable_means_no_filters() -> None:
    push = push_of(FOR_REVIEWS, PRODUCTPAGE_QUOTA, deny_rule(namespace="default"))
    assert has_no_policy(generate(push, **{"policy.istio.io/check": "disable"}))
    assert has_no_policy(generate(push, "productpage-v1", **{"policy.istio.io/check": "disable"}))


# --- quotas ----------------------------------------------------------------------------------


def test_a_bound_service_gets_the_quota_filter_failing_closed() -> None:
    config = generate(push_of(PRODUCTPAGE_QUOTA), "productpage-v1")
    assert CHECK not in names(config)
    assert names(config)[3] == QUOTA
    quota = quota_filter(config)
    assert quota.failure_mode_deny is True
    assert quota.status_on_error.code == 503
    assert quota.rate_limit_service.grpc_service.envoy_grpc.cluster_name == POLICY_CLUSTER


def test_check_then_quota_when_both_apply() -> None:
    config = generate(push_of(PRODUCTPAGE_QUOTA, deny_rule(namespace="default")), "productpage-v1")
    assert names(config)[3:5] == [CHECK, QUOTA]


def test_an_unbound_service_gets_no_quota() -> None:
    assert has_no_policy(generate(push_of(PRODUCTPAGE_QUOTA)))


def test_every_inbound_virtual_host_carries_the_quota_descriptor() -> None:
    config = generate(push_of(PRODUCTPAGE_QUOTA), "productpage-v1")
    vhosts = rate_limits(config)
    assert vhosts and all(len(limits) == 1 for limits in vhosts)
    actions = [json_format.MessageToDict(action) for action in vhosts[0][0].actions]
    assert actions == [
        {"genericKey": {"descriptorKey": "quota", "descriptorValue": "requestcountquota"}},
        {"genericKey": {"descriptorKey": "charge", "descriptorValue": "2"}},
        {"genericKey": {"descriptorKey": "destination.workload", "descriptorValue": "productpage-v1.default"}},
        {"remoteAddress": {}},
        # What the dimensions read, sorted: request.url_path is sent as :path.
        {"requestHeaders": {"headerName": ":path", "descriptorKey": ":path", "skipIfAbsent": True}},
        {"requestHeaders": {"headerName": "x-forwarded-for", "descriptorKey": "request.headers[x-forwarded-for]",
                            "skipIfAbsent": True}},
    ]


def test_the_headers_a_quota_rules_match_reads_are_sent_too() -> None:
    logged_out_only = PRODUCTPAGE_QUOTA.replace(
        "{actions: [{handler: quotahandler",
        "{match: 'match(request.headers[\"cookie\"], \"user=*\") == false', actions: [{handler: quotahandler")
    assert "cookie" in logged_out_only
    [[limit]] = rate_limits(generate(push_of(logged_out_only), "productpage-v1"))
    assert "cookie" in {action.request_headers.header_name for action in limit.actions}


def test_a_quota_spec_match_becomes_one_descriptor_per_alternative_sent_only_when_it_holds() -> None:
    spec = ("{rules: [{match: [{clause: {request.path: {prefix: /api}, request.method: {exact: POST}}}, "
            "{clause: {'request.headers[x-user]': {regex: 'bot-.*'}}}], "
            "quotas: [{charge: 2, quota: requestcountquota}]}]}")
    matched = PRODUCTPAGE_QUOTA.replace("{rules: [{quotas: [{charge: 2, quota: requestcountquota}]}]}", spec)
    assert matched != PRODUCTPAGE_QUOTA
    [[first, second]] = rate_limits(generate(push_of(matched), "productpage-v1"))
    matches = [[json_format.MessageToDict(a)["headerValueMatch"] for a in limit.actions
                if a.HasField("header_value_match")] for limit in (first, second)]
    assert matches == [
        [{"descriptorKey": "quota.match", "descriptorValue": "request.method", "expectMatch": True,
          "headers": [{"name": ":method", "stringMatch": {"exact": "POST"}}]},
         {"descriptorKey": "quota.match", "descriptorValue": "request.path", "expectMatch": True,
          "headers": [{"name": ":path", "stringMatch": {"prefix": "/api"}}]}],
        [{"descriptorKey": "quota.match", "descriptorValue": "request.headers[x-user]", "expectMatch": True,
          "headers": [{"name": "x-user", "stringMatch": {"safeRegex": {"regex": "bot-.*"}}}]}]]


def test_a_quota_spec_clause_envoy_cannot_match_is_a_warning_and_never_charges() -> None:
    spec = ("{rules: [{match: [{clause: {source.user: {exact: bob}}}], "
            "quotas: [{charge: 2, quota: requestcountquota}]}]}")
    matched = PRODUCTPAGE_QUOTA.replace("{rules: [{quotas: [{charge: 2, quota: requestcountquota}]}]}", spec)
    config = generate(push_of(matched), "productpage-v1")
    assert rate_limits(config) == [[]]
    assert any("QuotaSpec clause on 'source.user'" in warning for warning in config.warnings)


# --- the cluster the filters call ------------------------------------------------------------


def test_a_registry_service_is_reached_through_its_outbound_cluster() -> None:
    config = generate(push_of(FOR_REVIEWS))
    assert check_filter(config).grpc_service.envoy_grpc.cluster_name == POLICY_CLUSTER
    assert POLICY_CLUSTER in config.resources[CLUSTER_TYPE]
    assert "mixer_server" not in config.resources[CLUSTER_TYPE]
    # The listener names it, so CDS has it before the listener arrives.
    assert POLICY_CLUSTER in config.references["virtualInbound"]


def test_a_bare_address_gets_its_own_static_cluster() -> None:
    config = generate(push_of(FOR_REVIEWS, mesh="mixerCheckServer: 10.9.9.9:9091\n"))
    assert check_filter(config).grpc_service.envoy_grpc.cluster_name == "mixer_server"
    cluster = config.resources[CLUSTER_TYPE]["mixer_server"]
    assert cluster.type == cluster_pb2.Cluster.STATIC
    address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (address.address, address.port_value) == ("10.9.9.9", 9091)


def test_a_bare_address_adds_no_cluster_where_nothing_calls_it() -> None:
    config = generate(push_of(FOR_RATINGS, mesh="mixerCheckServer: 10.9.9.9:9091\n"))
    assert "mixer_server" not in config.resources[CLUSTER_TYPE]


# --- known gaps ------------------------------------------------------------------------------


def test_proxies_alike_but_for_the_annotation_get_their_own_filters() -> None:
    push = push_of(FOR_REVIEWS)
    memo = TranslationMemo()
    disabled = generator.generate(proxy("reviews-v1", **{"policy.istio.io/check": "disable"}), push, memo)
    enabled = generator.generate(proxy("reviews-v2"), push, memo)
    assert CHECK not in names(disabled)
    assert CHECK in names(enabled)


def test_a_rule_on_a_service_entry_host_name_is_checked() -> None:
    push = push_of(deny_rule('destination.service.name == "reviews.mesh.internal"'), """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-internal, namespace: default}
spec:
  hosts: [reviews.mesh.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
""")
    config = generate(push, "ratings-v1")
    assert CHECK in names(config)


def test_a_gateway_a_rule_can_reach_gets_the_check_filter() -> None:
    gateway = Proxy(id="router~10.0.1.1~ingress.istio-system~istio-system.svc.cluster.local", type=NodeType.ROUTER,
                    ip="10.0.1.1", pod="ingress", namespace="istio-system", dns_domain="istio-system.svc.cluster.local",
                    labels=(("istio", "ingressgateway"),), workload_name="istio-ingressgateway")
    gateway_config = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
    push = push_of(deny_rule('destination.labels["istio"] == "ingressgateway"'), gateway_config)
    [listener] = generator.generate(gateway, push).resources[LISTENER_TYPE].values()
    manager = hcm.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    assert CHECK in [f.name for f in manager.http_filters]
    # A rule for a sidecar's app leaves the gateway alone.
    push = push_of(FOR_REVIEWS, gateway_config)
    [listener] = generator.generate(gateway, push).resources[LISTENER_TYPE].values()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    assert CHECK not in [f.name for f in manager.http_filters]


# --- the check's transport -------------------------------------------------------------------

WITH_HTTP_CHECKS = SERVICES.replace("ports: [{number: 9091, name: grpc, protocol: GRPC}]",
                                    "ports: [{number: 9091, name: grpc, protocol: GRPC}, "
                                    "{number: 9094, name: http-check, protocol: HTTP}]")


def test_a_policy_service_with_an_http_check_port_is_asked_over_http() -> None:
    config = generate(push_of(FOR_REVIEWS, services=WITH_HTTP_CHECKS))
    check = check_filter(config)
    assert not check.HasField("grpc_service")
    assert check.http_service.server_uri.cluster == f"outbound|9094||{POLICY_HOST}"
    assert check.http_service.server_uri.uri == f"http://{POLICY_HOST}:9094"
    assert (check.failure_mode_allow, check.status_on_error.code) == (False, 503)
    added = {h.key: h.value for h in check.http_service.authorization_request.headers_to_add}
    assert added["x-mizzen-check-workload"] == "reviews-v1.default"
    assert added["x-mizzen-check-labels"] == '{"app": "reviews"}'
    assert added["x-mizzen-check-source"] == "%DOWNSTREAM_REMOTE_ADDRESS%"
    assert added["x-mizzen-check-principal"] == "%DOWNSTREAM_PEER_URI_SAN%"
    # Every request header goes, none a client could pass off as Envoy's additions.
    assert [p.safe_regex.regex for p in check.allowed_headers.patterns] == [".*"]
    assert [p.prefix for p in check.disallowed_headers.patterns] == ["x-mizzen-check-"]
    # The context travels in the headers; the routes carry none.
    route = config.resources[ROUTE_TYPE]["inbound|9080||"]
    assert all(CHECK not in r.typed_per_filter_config for vhost in route.virtual_hosts for r in vhost.routes)


def test_label_values_with_a_percent_sign_are_escaped_for_envoys_formatter() -> None:
    push = push_of(FOR_REVIEWS, services=WITH_HTTP_CHECKS)
    odd = dataclasses.replace(proxy(), labels=(("app", "reviews"), ("discount", "50%")))
    [found] = [f for f in http_filters(generator.generate(odd, push)) if f.name == CHECK]
    check = ext_authz_pb2.ExtAuthz()
    assert found.typed_config.Unpack(check)
    added = {h.key: h.value for h in check.http_service.authorization_request.headers_to_add}
    assert added["x-mizzen-check-labels"] == '{"app": "reviews", "discount": "50%%"}'


@pytest.mark.parametrize("handler", [
    "{compiledAdapter: denier, params: {status: {code: 14, message: down}}}",  # UNAVAILABLE: 503
    "{compiledAdapter: denier, params: {status: {code: 4}}}",  # DEADLINE_EXCEEDED: 504
    "{compiledAdapter: listchecker, params: {providerUrl: 'http://lists.example/x', blacklist: true}}",
])
def test_rules_whose_denials_http_would_turn_into_errors_stay_on_grpc(handler: str) -> None:
    rule = FOR_REVIEWS.replace("{compiledAdapter: denier, params: {status: {code: 7, message: denied}}}", handler)
    if "listchecker" in handler:
        rule = rule.replace("{compiledTemplate: checknothing}",
                            "{compiledTemplate: listentry, params: {value: 'source.labels[\"app\"] | \"none\"'}}")
    check = check_filter(generate(push_of(rule, services=WITH_HTTP_CHECKS)))
    assert check.grpc_service.envoy_grpc.cluster_name == POLICY_CLUSTER
    assert not check.HasField("http_service")
