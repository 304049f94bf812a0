"""A sidecar's outbound virtual hosts, pure: which VirtualService routes which host, and
what a routing change rebuilds (only the hosts it routes; the rest are the very messages
the last push made)."""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from libs.config import parse_text
from libs.envoy import ROUTE_TYPE
from services.pilot.model.config import ConfigSnapshot
from services.pilot.model.mesh import MeshConfig
from services.pilot.model.proxy import NodeType, Proxy
from services.pilot.model.push_context import PushContext
from services.pilot.model.scope import ProxyScope
from services.pilot.networking.generator import generate
from services.pilot.networking.memo import ROUTING, TranslationMemo
from services.pilot.networking.routes import MESH_GATEWAY, RouteContext
from services.pilot.networking.virtual_hosts import virtual_hosts
from services.pilot.xds.snapshot import encode

PROXY = Proxy(id="sidecar~10.0.0.9~client.default~default.svc.cluster.local", type=NodeType.SIDECAR,
              ip="10.0.0.9", pod="client", namespace="default", dns_domain="default.svc.cluster.local")


def service(name: str, namespace: str = "default") -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: [{name}.{namespace}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}, {{number: 9090, name: http-admin, protocol: HTTP}}]
  endpoints: [{{address: 10.0.1.1}}]
"""


SERVICES = (service("a"), service("b"), service("c"), service("d", "other"))


def virtual_service(name: str, hosts: list[str], http: str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: {hosts}
  http:
{http}"""


def to(host: str, status: int) -> str:
    """A catch-all rule that aborts with `status`, so each test can tell whose routes won."""
    return f"""\
  - fault: {{abort: {{httpStatus: {status}, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: {host}}}}}]
"""


def push_of(documents: list[str], revision: int = 1, services: tuple[str, ...] = SERVICES) -> PushContext:
    result = parse_text("---\n".join([*services, *documents]), "test")
    assert result.ok, result.errors()
    return PushContext.build(ConfigSnapshot(revision, {r.key: r for _, r in result.resources}), MeshConfig())


def hosts_of(documents: list[str], memo: TranslationMemo | None = None, revision: int = 1,
             services: tuple[str, ...] = SERVICES, proxy: Proxy = PROXY) -> list[rc.VirtualHost]:
    """Port 80's virtual hosts, as `proxy` (by default a sidecar in `default`) gets them."""
    push = push_of(documents, revision, services)
    scope = ProxyScope.build(proxy, push)
    ctx = RouteContext(push=push, proxy=proxy, port=80, gateways=frozenset({MESH_GATEWAY}))
    entries = [(s, p) for s in scope.services() for p in s.ports if p.number == 80]
    return virtual_hosts(entries, scope, ctx, ports="none", memo=memo)


def abort_status(vhost: rc.VirtualHost) -> int | None:
    """The abort status a test's VirtualService set on the host's first route, if any."""
    config = vhost.routes[0].typed_per_filter_config.get("envoy.filters.http.fault")
    if config is None:
        return None
    fault = fault_pb2.HTTPFault()
    config.Unpack(fault)
    return fault.abort.http_status


def by_name(vhosts: list[rc.VirtualHost]) -> dict[str, rc.VirtualHost]:
    return {v.name.split(".")[0]: v for v in vhosts}


def test_hosts_carry_every_name_a_client_may_use_and_unrouted_ones_go_to_their_cluster() -> None:
    hosts = by_name(hosts_of([]))
    assert list(hosts["a"].domains) == ["a.default.svc.cluster.local", "a.default.svc", "a.default", "a"]
    # Another namespace's service has no bare name from here.
    assert list(hosts["d"].domains) == ["d.other.svc.cluster.local", "d.other.svc", "d.other"]
    assert hosts["a"].routes[0].route.cluster == "outbound|80||a.default.svc.cluster.local"


def test_the_first_virtual_service_covering_a_host_routes_it_exact_or_wildcard() -> None:
    hosts = by_name(hosts_of([
        virtual_service("1-exact", ["b.default.svc.cluster.local"], to("b", 418)),
        virtual_service("2-wildcard", ["*.default.svc.cluster.local"], to("c", 503)),
    ]))
    # Config order is by name: the exact one comes first and wins for b; the wildcard
    # takes every other default service; other's service stays as it was.
    assert abort_status(hosts["b"]) == 418
    assert abort_status(hosts["a"]) == abort_status(hosts["c"]) == 503
    assert abort_status(hosts["d"]) is None and hosts["d"].routes[0].name == "default"


def test_a_virtual_service_with_no_routes_for_the_port_leaves_the_host_to_the_next() -> None:
    admin_only = """\
  - match: [{port: 9090}]
    route: [{destination: {host: a}}]
"""
    hosts = by_name(hosts_of([
        virtual_service("1-admin", ["a.default.svc.cluster.local"], admin_only),
        virtual_service("2-all", ["a.default.svc.cluster.local"], to("a", 429)),
    ]))
    assert abort_status(hosts["a"]) == 429


def test_a_routing_change_rebuilds_only_the_hosts_it_routes() -> None:
    memo = TranslationMemo()
    first = by_name(hosts_of([virtual_service("r", ["b.default.svc.cluster.local"], to("b", 418))], memo))
    memo.new_push(ROUTING)
    second = by_name(hosts_of([virtual_service("r", ["b.default.svc.cluster.local"], to("b", 503))], memo,
                              revision=2))
    assert abort_status(second["b"]) == 503
    # Every host the VirtualService does not route is the very message built before.
    assert all(second[name] is first[name] for name in ("a", "c", "d"))
    # A service added changes the hosts: they are planned again, and still right.
    memo.new_push()
    third = by_name(hosts_of([], memo, revision=3, services=(*SERVICES, service("e"))))
    assert sorted(third) == ["a", "b", "c", "d", "e"] and third["b"].routes[0].name == "default"


def test_namespaces_that_name_a_service_alike_share_its_host() -> None:
    memo = TranslationMemo()
    here = by_name(hosts_of([], memo))
    third = Proxy(id="sidecar~10.0.0.8~client.third~third.svc.cluster.local", type=NodeType.SIDECAR,
                  ip="10.0.0.8", pod="client", namespace="third", dns_domain="third.svc.cluster.local")
    there = by_name(hosts_of([], memo, proxy=third))
    # `d` lives in `other`: both clients name it alike, so both get the one message.
    assert there["d"] is here["d"]
    # `a` lives in `default`, whose clients also call it plain `a`: its hosts differ.
    assert "a" in here["a"].domains and "a" not in there["a"].domains


def test_a_sidecars_route_configuration_is_joined_from_its_hosts_bytes_and_encodes_as_its_message() -> None:
    memo = TranslationMemo()
    push = push_of([virtual_service("r", ["b.default.svc.cluster.local"], to("b", 418))])
    routes = generate(PROXY, push, memo).resources[ROUTE_TYPE]["80"]
    # The message is what its bytes say: the routed host, the default ones, the fallback.
    hosts = by_name(list(routes.virtual_hosts))
    assert abort_status(hosts["b"]) == 418 and hosts["a"].routes[0].name == "default"
    assert routes.virtual_hosts[-1].domains == ["*"] and routes.ignore_port_in_host_matching
    # Its encoding for Envoy takes the bytes it was parsed from, and they are the message's own.
    joined = memo.take_serialized(routes)
    assert joined is not None and joined == routes.SerializeToString()
    assert encode("80", routes, joined) == encode("80", routes)
    # Taken once: the memo keeps the encoding, not the bytes as well.
    assert memo.take_serialized(routes) is None
