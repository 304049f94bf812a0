"""VirtualService HTTP translation, pure: the details of Istio's route.go that traffic
tests cannot tell apart cheaply (defaults, precedence, what is dropped)."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.v3 import percent_pb2

from libs.config import parse_text
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.networking import route_actions
from services.pilot.networking.route_match import header_matcher, route_match
from services.pilot.networking.routes import RouteContext, combine_vhost_routes, http_routes

PROXY = Proxy(id="router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local", type=NodeType.ROUTER,
              ip="127.0.0.1", pod="gw", namespace="istio-system", dns_domain="istio-system.svc.cluster.local",
              labels=(("istio", "ingressgateway"),))

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
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
  subsets: [{name: v1, labels: {version: v1}}]
"""


def routes_of(http: str, *, port: int = 8080) -> tuple[list[rc.Route], RouteContext]:
    text = f"""{SERVICES}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
{http}"""
    result = parse_text(text, "test")
    assert result.ok, result.errors()
    resources = {r.key: r for _, r in result.resources}
    push = PushContext.build(ConfigSnapshot(1, resources), MeshConfig())
    ctx = RouteContext(push=push, proxy=PROXY, port=port, gateways=frozenset({"default/gw"}))
    vs = next(r for r in resources.values() if r.kind == "VirtualService")
    return http_routes(vs, ctx), ctx


def test_default_retry_policy_and_timeouts() -> None:
    (route,), _ = routes_of("  - route: [{destination: {host: web, subset: v1}}]")
    action = route.route
    assert action.cluster == "outbound|80|v1|web.default.svc.cluster.local"
    assert action.retry_policy.num_retries.value == 2
    assert action.retry_policy.retry_on == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    assert list(action.retry_policy.retriable_status_codes) == [503]
    # Consistent hashing on the destination: no previous-hosts predicate (the request stays on its host).
    assert [h.header.header_name for h in action.hash_policy] == ["x-user"]
    assert not action.retry_policy.retry_host_predicate
    assert action.HasField("timeout") and action.timeout.ToTimedelta().total_seconds() == 0
    assert action.max_grpc_timeout.ToTimedelta().total_seconds() == 0
    assert route.metadata.filter_metadata["istio"]["config"] == \
        "/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/vs"
    assert route.decorator.operation == "web.default.svc.cluster.local:80/*"


@pytest.mark.parametrize(("retries", "expected"), [
    ({"attempts": 0, "retryOn": "5xx"}, None),
    ({"retryOn": "5xx"}, None),
    ({"attempts": 3, "retryOn": "gateway-error,418, 999 ,reset"}, ("gateway-error,999,reset,retriable-status-codes",
                                                                    [418], 3)),
    ({"attempts": 1, "retryOn": "503"}, ("retriable-status-codes", [503], 1)),
    ({"attempts": 4}, ("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", [503], 4)),
])
def test_retry_conversion(retries: dict[str, Any], expected: tuple[str, list[int], int] | None) -> None:
    policy = route_actions.retry_policy(retries)
    if expected is None:
        assert policy is None
        return
    assert policy is not None
    assert (policy.retry_on, list(policy.retriable_status_codes), policy.num_retries.value) == expected


def test_retry_options() -> None:
    policy = route_actions.retry_policy({"attempts": 2, "perTryTimeout": "0.5s", "backoff": "0.1s",
                                         "retryIgnorePreviousHosts": False, "retryRemoteLocalities": True})
    assert policy is not None
    assert policy.per_try_timeout.ToTimedelta().total_seconds() == 0.5
    assert policy.retry_back_off.base_interval.ToTimedelta().total_seconds() == 0.1
    assert not policy.retry_host_predicate
    assert policy.retry_priority.name == "envoy.retry_priorities.previous_priorities"


def test_fault_percentages_default_to_none() -> None:
    warnings: list[str] = []
    assert route_actions.fault({"abort": {"httpStatus": 500}}, warnings) is not None
    fault = route_actions.fault({"abort": {"httpStatus": 500}, "delay": {"fixedDelay": "1s"}})
    assert fault is not None
    assert fault.abort.percentage.numerator == 0 and fault.delay.percentage.numerator == 0
    legacy = route_actions.fault({"delay": {"fixedDelay": "1s", "percent": 30}})
    assert legacy is not None
    assert (legacy.delay.percentage.numerator, legacy.delay.percentage.denominator) == \
        (30, percent_pb2.FractionalPercent.HUNDRED)
    assert route_actions.fault({"delay": {"exponentialDelay": "1s", "percentage": {"value": 5}}}, warnings) is None
    assert route_actions.fault({"abort": {"http2Error": "CANCEL"}}, warnings) is None
    assert len(warnings) == 2


def test_grpc_abort() -> None:
    fault = route_actions.fault({"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 12.5}}})
    assert isinstance(fault, fault_pb2.HTTPFault)
    assert fault.abort.grpc_status == 14
    assert fault.abort.percentage.numerator == 125_000


@pytest.mark.parametrize(("spec", "port", "tls", "expected"), [
    ({"uri": "/a", "port": 80}, 8080, False, 0),
    ({"uri": "/a", "port": 443, "scheme": "https"}, 8080, False, 0),
    ({"uri": "/a", "port": 443}, 8080, False, 443),
    ({"derivePort": "FROM_REQUEST_PORT"}, 8080, False, 8080),
    ({"derivePort": "FROM_REQUEST_PORT"}, 443, True, 0),
    ({"derivePort": "FROM_PROTOCOL_DEFAULT"}, 8080, False, 0),
])
def test_redirect_ports(spec: dict[str, Any], port: int, tls: bool, expected: int) -> None:
    action = route_actions.redirect(spec, listener_port=port, tls=tls)
    assert action is not None and action.port_redirect == expected


def test_redirect_with_unsupported_code_is_skipped() -> None:
    routes, ctx = routes_of("""\
  - match: [{uri: {prefix: /r}}]
    redirect: {uri: /x, redirectCode: 399}
  - route: [{destination: {host: web}}]
""")
    assert len(routes) == 1 and routes[0].HasField("route")
    assert "redirectCode 399" in ctx.warnings[0]


def test_header_operations_and_authority() -> None:
    ops = route_actions.header_operations({
        "request": {"set": {"b": "1", "a": "2", "host": "h.example"}, "add": {"c": "3", ":path": "/x"},
                    "remove": ["d", ":authority"]},
        "response": {"add": {"e": "4"}, "remove": ["f"]},
    })
    assert [(o.header.key, o.append_action) for o in ops.request_add] == [
        ("a", base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
        ("b", base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
        ("c", base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD),
    ]
    assert ops.request_remove == ["d"] and ops.response_remove == ["f"]
    assert ops.authority == "h.example"


def test_authority_precedence() -> None:
    (route,), _ = routes_of("""\
  - headers: {request: {set: {":authority": from-headers}}}
    route:
    - destination: {host: web}
      headers: {request: {set: {host: from-destination}}}
""")
    assert route.route.host_rewrite_literal == "from-headers"
    (route,), _ = routes_of("""\
  - rewrite: {authority: from-rewrite}
    route:
    - destination: {host: web}
      headers: {request: {set: {host: from-destination}}}
""")
    assert route.route.host_rewrite_literal == "from-rewrite"


def test_destination_headers_single_and_weighted() -> None:
    (single,), _ = routes_of("""\
  - headers: {request: {set: {x-route: r}}}
    route:
    - destination: {host: web}
      headers: {request: {set: {x-dest: d}}, response: {remove: [x-gone]}}
""")
    assert single.route.cluster and [o.header.key for o in single.request_headers_to_add] == ["x-route", "x-dest"]
    assert list(single.response_headers_to_remove) == ["x-gone"]
    (split,), _ = routes_of("""\
  - route:
    - destination: {host: web, subset: v1}
      weight: 100
      headers: {request: {set: {x-dest: v1, host: v1.internal}}}
    - destination: {host: web}
      weight: 0
""")
    (weight,) = split.route.weighted_clusters.clusters
    assert weight.name == "outbound|80|v1|web.default.svc.cluster.local"
    assert [o.header.key for o in weight.request_headers_to_add] == ["x-dest"]
    assert weight.host_rewrite_literal == "v1.internal"


def test_unresolvable_destinations() -> None:
    routes, ctx = routes_of("""\
  - match: [{uri: {prefix: /missing}}]
    route: [{destination: {host: web, subset: v9}}]
  - match: [{uri: {prefix: /half}}]
    route:
    - {destination: {host: web}, weight: 50}
    - {destination: {host: nowhere.example}, weight: 50}
  - route: [{destination: {host: web}}]
""")
    missing, half, default = routes
    assert missing.direct_response.status == 503 and "subset v9" in missing.direct_response.body.inline_string
    assert [c.name for c in half.route.weighted_clusters.clusters] == [
        "outbound|80||web.default.svc.cluster.local", "outbound|8080||nowhere.example"]
    assert default.route.cluster == "outbound|80||web.default.svc.cluster.local"
    assert ctx.clusters == {"outbound|80||web.default.svc.cluster.local"}
    assert len(ctx.warnings) == 2


def test_matches_and_catch_all() -> None:
    routes, _ = routes_of("""\
  - name: r
    match:
    - name: m
      uri: {prefix: /a}
      ignoreUriCase: true
      method: {exact: GET}
      headers: {x-b: {}, x-a: {prefix: p}}
      withoutHeaders: {x-c: {exact: c}, x-d: {}}
      queryParams: {q: {}}
    - uri: {prefix: /}
    - uri: {prefix: /never}
    directResponse: {status: 200}
  - route: [{destination: {host: web}}]
""")
    assert len(routes) == 2, "nothing after a catch-all match is emitted"
    first = routes[0]
    assert first.name == "r.m" and routes[1].name == "r"
    match = first.match
    assert match.prefix == "/a" and match.case_sensitive.value is False
    assert [h.name for h in match.headers] == ["x-a", "x-b", "x-c", "x-d", ":method"]
    headers = {h.name: h for h in match.headers}
    assert headers["x-b"].present_match and headers["x-a"].string_match.prefix == "p"
    assert headers["x-c"].invert_match and headers["x-c"].treat_missing_header_as_empty
    assert headers["x-d"].invert_match and headers["x-d"].present_match
    assert not headers["x-d"].treat_missing_header_as_empty
    assert match.query_parameters[0].present_match
    assert route_match(None).prefix == "/" and route_match({}).case_sensitive.value is True


def test_present_match_spelled_as_regex_star() -> None:
    assert header_matcher("x", {"regex": "*"}).present_match


def test_match_gateways_and_ports_select_routes() -> None:
    routes, _ = routes_of("""\
  - match: [{gateways: [other]}]
    directResponse: {status: 201}
  - match: [{port: 9999}]
    directResponse: {status: 202}
  - match: [{gateways: [gw], sourceLabels: {app: nobody}}]
    directResponse: {status: 203}
  - match: [{sourceLabels: {app: nobody}}]
    directResponse: {status: 204}
""")
    # A match naming gateways ignores its source labels (Istio's sourceMatchHTTP).
    assert [r.direct_response.status for r in routes] == [203]


def test_mirrors() -> None:
    (unmirrored, route), ctx = routes_of("""\
  - match: [{uri: {prefix: /none}}]
    route: [{destination: {host: web}}]
    mirror: {host: web, subset: v1}
    mirrorPercentage: {value: 0}
  - route: [{destination: {host: web}}]
    mirrors:
    - destination: {host: web}
    - destination: {host: web, subset: v1}
      percentage: {value: 25.5}
    - destination: {host: nowhere.example}
""")
    assert not unmirrored.route.request_mirror_policies, "an explicit 0% mirrors nothing"
    policies = route.route.request_mirror_policies
    assert [(p.cluster, p.runtime_fraction.default_value.numerator) for p in policies] == [
        ("outbound|80||web.default.svc.cluster.local", 100),
        ("outbound|80|v1|web.default.svc.cluster.local", 255_000),
    ]
    assert all(p.trace_sampled.value is False for p in policies)
    assert any("not mirrored" in w for w in ctx.warnings)


def test_rewrite_regex_wins_over_prefix() -> None:
    action = rc.RouteAction()
    route_actions.rewrite(action, {"uri": "/p", "uriRegexRewrite": {"match": "^/a", "rewrite": "/b"}})
    assert action.regex_rewrite.substitution == "/b" and not action.prefix_rewrite


def test_direct_response_bodies() -> None:
    assert route_actions.direct_response(200, {"bytes": "aGVsbG8="}).body.inline_bytes == b"hello"
    assert route_actions.direct_response(200, {"string": "hi"}).body.inline_string == "hi"
    assert not route_actions.direct_response(204).HasField("body")


def test_cors() -> None:
    policy = route_actions.cors({"allowOrigin": ["https://a"], "allowMethods": ["GET"], "maxAge": "90s",
                                 "unmatchedPreflights": "IGNORE"})
    assert policy.allow_origin_string_match[0].exact == "https://a"
    assert policy.max_age == "90" and policy.allow_methods == "GET"
    assert policy.forward_not_matching_preflights.value is False
    assert policy.filter_enabled.default_value.numerator == 100
    assert not policy.HasField("allow_credentials")


def test_combined_virtual_hosts_put_catch_alls_last() -> None:
    catch_all = rc.Route(name="all", match=rc.RouteMatch(prefix="/"))
    specific = rc.Route(name="a", match=rc.RouteMatch(prefix="/a"))
    assert [r.name for r in combine_vhost_routes([catch_all, specific])] == ["a", "all"]
