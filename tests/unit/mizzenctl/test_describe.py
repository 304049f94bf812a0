"""`x describe pod|service` in istioctl's words: rules named by the proxy's config (pilot's
view), read from galley's config; PeerAuthentication precedence; the gateway exposing a
service; stale references."""

from __future__ import annotations

from typing import Any

import pytest

from tools.mizzenctl import describe, describe_policies
from tools.mizzenctl.describe_render import Mesh, ProxyView, pod_text, service_text
from tools.mizzenctl.describe_rules import virtual_service_lines

Json = dict[str, Any]
REVIEWS = "reviews.default.svc.cluster.local"
PRODUCTPAGE = "productpage.default.svc.cluster.local"
VS_PATH = "/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/"

SERVICES = [
    {"hostname": REVIEWS, "namespace": "default", "ports": [{"name": "http", "port": 9080, "protocol": "HTTP"}],
     "endpoints": {"9080": ["10.0.0.3:9080", "10.0.0.4:9080"]}},
    {"hostname": PRODUCTPAGE, "namespace": "default", "ports": [{"name": "http", "port": 9080, "protocol": "HTTP"}],
     "endpoints": {"9080": ["10.0.0.1:9080"]}},
]


def resource(kind: str, name: str, namespace: str, spec: Json) -> Json:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def subsets(*versions: str) -> list[Json]:
    return [{"name": v, "labels": {"version": v}} for v in versions]


CONFIG = {
    "DestinationRule": [resource("DestinationRule", "reviews", "default",
                                 {"host": "reviews", "subsets": subsets("v1", "v2", "v3")})],
    "VirtualService": [
        resource("VirtualService", "reviews", "default", {"hosts": ["reviews"], "http": [
            {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
            {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}),
        resource("VirtualService", "bookinfo", "default", {"hosts": ["*"], "gateways": ["bookinfo-gateway"], "http": [
            {"match": [{"uri": {"exact": "/productpage"}}, {"uri": {"prefix": "/static"}}],
             "route": [{"destination": {"host": "productpage", "port": {"number": 9080}}}]}]}),
    ],
    "Gateway": [resource("Gateway", "bookinfo-gateway", "default", {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]})],
    "PeerAuthentication": [
        resource("PeerAuthentication", "default", "istio-system", {"mtls": {"mode": "STRICT"}}),
        resource("PeerAuthentication", "reviews-ports", "default", {
            "selector": {"matchLabels": {"app": "reviews"}}, "mtls": {"mode": "UNSET"},
            "portLevelMtls": {"9080": {"mode": "PERMISSIVE"}}}),
    ],
    "AuthorizationPolicy": [resource("AuthorizationPolicy", "reviews-viewer", "default", {
        "selector": {"matchLabels": {"app": "reviews"}}, "action": "ALLOW", "rules": [{}]})],
}
MESH = Mesh(CONFIG)


def rbac_route(policy: str) -> Json:
    """The RBAC rules pilot hands an inbound route's HTTP RBAC filter (as `x authz check` reads them)."""
    per_route = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
    return {"envoy.filters.http.rbac": {"@type": per_route, "rbac": {"rules": {"policies": {policy: {}}}}}}


def dump(clusters: list[Json], routes: list[Json]) -> Json:
    admin = "type.googleapis.com/envoy.admin.v3."
    return {"configs": [
        {"@type": f"{admin}ClustersConfigDump", "dynamic_active_clusters": [{"cluster": c} for c in clusters]},
        {"@type": f"{admin}RoutesConfigDump", "dynamic_route_configs": [{"route_config": r} for r in routes]}]}


def route(cluster: str, vs: str = "") -> Json:
    found: Json = {"match": {"prefix": "/"}, "route": {"cluster": cluster}}
    if vs:
        found["metadata"] = {"filter_metadata": {"istio": {"config": VS_PATH + vs}}}
    return found


AUTO_MTLS = {"transport_socket_matches": [{"name": "tlsMode-istio"}, {"name": "tlsMode-disabled"}]}


def reviews_v1(policy: str = "ns[default]-policy[reviews-viewer]-rule[0]") -> ProxyView:
    row = {"proxy": "sidecar~10.0.0.3~reviews-v1.default~default.svc.cluster.local", "name": "reviews-v1.default",
           "type": "sidecar", "ip": "10.0.0.3", "labels": {"app": "reviews", "version": "v1"},
           "service_account": "bookinfo-reviews", "cluster_id": "mesh-workloads"}
    clusters = [{"name": f"outbound|9080||{REVIEWS}", **AUTO_MTLS}]
    routes = [{"name": "http_proxy", "virtual_hosts": [{"name": f"{REVIEWS}:9080", "routes": [
        route(f"outbound|9080|v2|{REVIEWS}", "reviews"), route(f"outbound|9080|v1|{REVIEWS}", "reviews")]}]},
        {"name": "inbound|9080||", "virtual_hosts": [{"name": "inbound|http|9080", "routes": [route("inbound|9080||")],
                                                    "typed_per_filter_config": rbac_route(policy)}]}]
    origins = {"destination_rules": {f"outbound|9080||{REVIEWS}": "reviews.default"}}
    return ProxyView(row, dump(clusters, routes), origins)


def ingress(vs: str = "bookinfo") -> ProxyView:
    row = {"proxy": "router~10.0.1.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
           "name": "istio-ingressgateway.istio-system", "type": "router", "ip": "10.0.1.1",
           "labels": {"istio": "ingressgateway"}}
    routes = [{"name": "http.8080", "virtual_hosts": [{"name": "*:8080", "routes": [
        route(f"outbound|9080||{PRODUCTPAGE}", vs)]}]}]
    return ProxyView(row, dump([], routes), {})


def productpage() -> ProxyView:
    row = {"proxy": "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local",
           "name": "productpage-v1.default", "type": "sidecar", "ip": "10.0.0.1",
           "labels": {"app": "productpage", "version": "v1"}, "service_account": "bookinfo-productpage",
           "cluster_id": "Kubernetes"}
    clusters = [{"name": f"outbound|9080||{PRODUCTPAGE}", "transport_socket": {
        "name": "envoy.transport_sockets.tls", "typed_config": {"common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default"}]}}}}]
    return ProxyView(row, dump(clusters, []), {})


def test_describe_pod_names_each_rule_that_applies_and_the_mtls_mode() -> None:
    assert pod_text(reviews_v1(), SERVICES, MESH, [ingress()], "default") == """\
Pod: reviews-v1
   Pod Ports: 9080
   Identity: spiffe://cluster.local/ns/default/sa/bookinfo-reviews
   Registry: mesh-workloads
--------------------
Service: reviews
   Port: http 9080/HTTP targets pod port 9080
   Clients' mTLS: auto (ISTIO_MUTUAL to endpoints with a sidecar, plaintext to the rest)
DestinationRule: reviews for "reviews"
   Matching subsets: v1
      (Non-matching subsets v2,v3)
   No Traffic Policy
VirtualService: reviews
   1 additional destination(s) that will not reach this pod
      Route to non-matching subset v2 for (Match: when headers are end-user=jason)
--------------------
Effective PeerAuthentication:
   Workload mTLS mode: STRICT
   Port Level mTLS mode:
      9080: PERMISSIVE
Applied PeerAuthentication:
   default.istio-system, reviews-ports.default
--------------------
Applied AuthorizationPolicy:
   reviews-viewer.default (ALLOW)
"""


def test_describe_pod_shows_the_gateway_that_exposes_its_service() -> None:
    text = pod_text(productpage(), SERVICES, MESH, [ingress()], "default")
    assert text.endswith("""\
--------------------
Service: productpage
   Port: http 9080/HTTP targets pod port 9080
   Clients' mTLS: ISTIO_MUTUAL
--------------------
Effective PeerAuthentication:
   Workload mTLS mode: STRICT
Applied PeerAuthentication:
   default.istio-system
--------------------
No AuthorizationPolicies apply
--------------------
Exposed on Ingress Gateway http://10.0.1.1:8080
Gateway: bookinfo-gateway
VirtualService: bookinfo
   Match: /productpage, Match: /static*
""")
    assert "   Registry: Kubernetes\n" in text


def test_describe_pod_warns_when_the_proxy_holds_rules_galley_no_longer_has() -> None:
    view = reviews_v1(policy="ns[default]-policy[removed]-rule[0]")
    text = pod_text(view, SERVICES, MESH, [ingress(vs="deleted")], "default")
    assert "WARNING: Proxy is stale; it enforces non-existent authorization policy removed.default" in text
    assert "      WARNING: not in the proxy's RBAC filters" in text
    productpage_text = pod_text(productpage(), SERVICES, MESH, [ingress(vs="deleted")], "default")
    assert "WARNING: Proxy is stale; it references to non-existent virtual service deleted.default" in productpage_text


def test_describe_pod_without_services() -> None:
    view = ProxyView({"name": "lonely.default", "ip": "10.9.9.9", "labels": {}})
    text = pod_text(view, SERVICES, MESH, [], "other")
    assert text.startswith("Pod: lonely.default\n   Pod does not expose ports\n"
                           "Warning: No services select pod lonely.default")


def test_describe_service_matches_subsets_against_every_pod() -> None:
    v2 = ProxyView({**reviews_v1().row, "name": "reviews-v2.default", "ip": "10.0.0.4",
                    "labels": {"app": "reviews", "version": "v2"}})
    text = service_text(SERVICES[0], [reviews_v1(), v2], MESH, [ingress()], "default")
    assert text == """\
Service: reviews
   Port: http 9080/HTTP targets pod port 9080
   Clients' mTLS: auto (ISTIO_MUTUAL to endpoints with a sidecar, plaintext to the rest)
DestinationRule: reviews for "reviews"
   Matching subsets: v1,v2
      (Non-matching subsets v3)
   No Traffic Policy
VirtualService: reviews
   Match: when headers are end-user=jason
"""
    assert service_text(SERVICES[0], [], MESH, [], "other") == 'Service "reviews.default" has no pods.\n'


def test_virtual_service_weights_and_unknown_subsets() -> None:
    vs = resource("VirtualService", "split", "default", {"http": [{"route": [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 70},
        {"destination": {"host": "reviews.default", "subset": "v9"}, "weight": 30}]}]})
    assert virtual_service_lines(vs, "split", REVIEWS, ["v1"], ["v2"], "reviews") == [
        "VirtualService: split", '   Route to host "reviews" subset "v1" with weight 70%']
    assert virtual_service_lines(vs, "split", REVIEWS, [], ["v1", "v2"], "reviews") == [
        "VirtualService: split", "   WARNING: No destinations match pod subsets (checked 1 HTTP routes)",
        "      Route to non-matching subset v1 for (everything)",
        "      Warning: Route to UNKNOWN subset v9; check DestinationRule reviews"]


@pytest.mark.parametrize(("policies", "mode"), [
    ([], "PERMISSIVE"),
    ([("default", "istio-system", None, "STRICT")], "STRICT"),
    # The namespace's own policy overrides the mesh's; UNSET defers to the level above.
    ([("default", "istio-system", None, "STRICT"), ("ns", "default", None, "DISABLE")], "DISABLE"),
    ([("default", "istio-system", None, "STRICT"), ("ns", "default", None, "UNSET")], "STRICT"),
    # A workload policy wins, but only for the workloads it selects.
    ([("ns", "default", None, "PERMISSIVE"), ("w", "default", {"app": "reviews"}, "STRICT")], "STRICT"),
    ([("ns", "default", None, "PERMISSIVE"), ("w", "default", {"app": "ratings"}, "STRICT")], "PERMISSIVE"),
    # Another namespace's policy is not this workload's.
    ([("other", "shop", None, "STRICT")], "PERMISSIVE"),
])
def test_effective_mtls_follows_istios_precedence(policies: list[tuple[str, str, dict[str, str] | None, str]],
                                                  mode: str) -> None:
    resources = [resource("PeerAuthentication", name, ns, {"mtls": {"mode": m}, **(
        {"selector": {"matchLabels": labels}} if labels else {})}) for name, ns, labels, m in policies]
    effective = describe_policies.effective_mtls(resources, "default", {"app": "reviews"}, "istio-system")
    assert effective.mode == mode


@pytest.mark.parametrize(("name", "found"), [
    ("reviews", REVIEWS), ("reviews.default", REVIEWS), (REVIEWS, REVIEWS), ("reviews.shop", None), ("rev", None)])
def test_find_service_reads_names_as_istioctl_does(name: str, found: str | None) -> None:
    service = describe.find_service(SERVICES, name, "default")
    assert (service or {}).get("hostname") == found
