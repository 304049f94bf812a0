"""HTTPMatchRequest through a real Envoy gateway: every match field, one test each.

One file of config per module: each feature has its own VirtualService on its own host
(`<feature>.test`).  A matched rule answers its name as a direct response; unmatched
requests fall through to the reviews-v1 upstream.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from samples.echo import EchoServer
from tests.harness.config_env import ConfigEnv
from tests.harness.mesh import Proxy
from tests.harness.ports import free_port
from tests.harness.routing import answered_by, ask, documents, echoed, gateway_yaml, version_subsets, virtual_service
from tests.harness.upstreams import Workload, service_entry
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.integration

V1 = "upstream:reviews-v1"
FALLBACK = "- route: [{destination: {host: reviews, subset: v1}}]"


def said(name: str) -> str:
    return f'directResponse: {{status: 200, body: {{string: "{name}"}}}}'


def rules(*matched: tuple[str, str]) -> str:
    """`(match YAML, rule name)` pairs, each answering its name, then the fallback."""
    return "\n".join([*(f"- match: {m}\n  {said(name)}" for m, name in matched), FALLBACK])


DESTINATION_RULE = version_subsets("reviews", "v1")


def _virtual_services(second_port: int) -> list[str]:
    return [
        virtual_service("uri-exact", rules(("[{uri: {exact: /exact}}]", "exact"))),
        virtual_service("uri-prefix", rules(("[{uri: {prefix: /pre}}]", "prefix"))),
        virtual_service("uri-regex", rules(("[{uri: {regex: '/items/[0-9]+'}}]", "regex"))),
        virtual_service("ignore-case", rules(
            ("[{uri: {exact: /Case}, ignoreUriCase: true}]", "exact-any-case"),
            ("[{uri: {prefix: /Pre}, ignoreUriCase: true}]", "prefix-any-case"),
        )),
        virtual_service("scheme", rules(
            ("[{scheme: {exact: https}}]", "https"),
            ("[{scheme: {exact: http}}]", "http"),
        )),
        virtual_service("method", rules(
            ("[{method: {exact: POST}}]", "post"),
            ("[{method: {regex: 'PUT|PATCH'}}]", "put-or-patch"),
        )),
        virtual_service("authority", rules(("[{authority: {prefix: api.}}]", "api")),
                        hosts=["authority.test", "api.authority.test"]),
        virtual_service("header-exact", rules(("[{headers: {x-user: {exact: jason}}}]", "jason"))),
        virtual_service("header-prefix", rules(("[{headers: {x-user: {prefix: ja}}}]", "ja-prefix"))),
        virtual_service("header-regex", rules(("[{headers: {x-user: {regex: 'j[a-z]+n'}}}]", "j-regex"))),
        virtual_service("header-present", rules(("[{headers: {x-user: {}}}]", "present"))),
        virtual_service("without-headers", rules(("[{withoutHeaders: {x-user: {exact: jason}}}]", "not-jason"))),
        virtual_service("query-exact", rules(("[{queryParams: {q: {exact: 'yes'}}}]", "q-yes"))),
        virtual_service("query-prefix", rules(("[{queryParams: {q: {prefix: ab}}}]", "q-ab"))),
        virtual_service("query-regex", rules(("[{queryParams: {q: {regex: '[0-9]+'}}}]", "q-digits"))),
        virtual_service("query-present", rules(("[{queryParams: {q: {}}}]", "q-present"))),
        virtual_service("port", rules((f"[{{port: {second_port}}}]", "second-port"))),
        virtual_service("gateways", rules(("[{gateways: [gw-b]}]", "via-gw-b")), gateways=["gw", "gw-b"]),
        virtual_service("order", rules(
            ("[{uri: {prefix: /a}}]", "first"),
            ("[{uri: {prefix: /a/b}}]", "shadowed"),
            ("[{uri: {exact: /b}}, {headers: {x-b: {exact: '1'}}}]", "either"),
            ("[{uri: {prefix: /both}, headers: {x-and: {exact: '1'}}}]", "both"),
        ) + f"\n- match: [{{uri: {{prefix: /}}}}]\n  {said('after-catch-all')}"),
    ]


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"main": free_port(), "second": free_port(), "gw-b": free_port()}


@pytest.fixture(scope="module")
def routed(env: ConfigEnv, gateway: Proxy, ports: dict[str, int]) -> Iterator[dict[str, int]]:
    with EchoServer("reviews-v1") as v1:
        env.apply("http-match", documents(
            service_entry("reviews.default.svc.cluster.local", [Workload(v1, {"app": "reviews", "version": "v1"})]),
            DESTINATION_RULE,
            gateway_yaml("gw", [ports["main"], ports["second"]]),
            gateway_yaml("gw-b", [ports["gw-b"]]),
            *_virtual_services(ports["second"]),
        ))
        assert env.nacks() == []
        for port in ports.values():
            wait_until(lambda p=port: ask(p, "gateways.test").status_code == 200, what=f"gateway listener on {port}")
        yield ports


def which(ports: dict[str, int], host: str, path: str = "/", *, port: str = "main", method: str = "GET",
          **headers: str) -> str:
    return answered_by(ask(ports[port], host, path, method=method, **headers))


def test_uri_exact(routed: dict[str, int]) -> None:
    assert which(routed, "uri-exact.test", "/exact") == "exact"
    for path in ("/exact/", "/exactly", "/EXACT", "/"):
        assert which(routed, "uri-exact.test", path) == V1, path


def test_uri_prefix(routed: dict[str, int]) -> None:
    for path in ("/pre", "/prefix", "/pre/x?y=1"):
        assert which(routed, "uri-prefix.test", path) == "prefix", path
    for path in ("/pr", "/other/pre", "/PRE"):
        assert which(routed, "uri-prefix.test", path) == V1, path


def test_uri_regex_matches_the_whole_path(routed: dict[str, int]) -> None:
    assert which(routed, "uri-regex.test", "/items/42") == "regex"
    for path in ("/items/42/x", "/items/abc", "/x/items/42"):
        assert which(routed, "uri-regex.test", path) == V1, path


def test_ignore_uri_case(routed: dict[str, int]) -> None:
    for path in ("/Case", "/case", "/CASE"):
        assert which(routed, "ignore-case.test", path) == "exact-any-case", path
    for path in ("/pre/x", "/PRE", "/Prefix"):
        assert which(routed, "ignore-case.test", path) == "prefix-any-case", path
    assert which(routed, "ignore-case.test", "/cases") == V1


def test_scheme(routed: dict[str, int]) -> None:
    # Plain HTTP to the gateway: :scheme is http, never https.
    assert which(routed, "scheme.test") == "http"


def test_method(routed: dict[str, int]) -> None:
    assert which(routed, "method.test", method="POST") == "post"
    assert which(routed, "method.test", method="PATCH") == "put-or-patch"
    assert which(routed, "method.test", method="PUT") == "put-or-patch"
    assert which(routed, "method.test", method="GET") == V1


def test_authority(routed: dict[str, int]) -> None:
    assert which(routed, "api.authority.test") == "api"
    assert which(routed, "authority.test") == V1


def test_the_hosts_port_is_not_matched_and_reaches_the_upstream(routed: dict[str, int]) -> None:
    # Behind a load balancer or a node port, clients name ports the gateway never listens on.
    assert which(routed, "uri-exact.test:31380", "/exact") == "exact"
    response = ask(routed["main"], "uri-exact.test:31380", "/")
    assert answered_by(response) == V1
    assert echoed(response)["headers"]["host"] == "uri-exact.test:31380"


def test_header_exact(routed: dict[str, int]) -> None:
    assert which(routed, "header-exact.test", x_user="jason") == "jason"
    assert which(routed, "header-exact.test", x_user="jasonx") == V1
    assert which(routed, "header-exact.test") == V1


def test_header_prefix(routed: dict[str, int]) -> None:
    assert which(routed, "header-prefix.test", x_user="jack") == "ja-prefix"
    assert which(routed, "header-prefix.test", x_user="mike") == V1


def test_header_regex_matches_the_whole_value(routed: dict[str, int]) -> None:
    assert which(routed, "header-regex.test", x_user="jason") == "j-regex"
    for value in ("jasonx", "xjason", "jn"):
        assert which(routed, "header-regex.test", x_user=value) == V1, value


def test_header_present(routed: dict[str, int]) -> None:
    assert which(routed, "header-present.test", x_user="anyone") == "present"
    assert which(routed, "header-present.test", x_other="anyone") == V1


def test_without_headers(routed: dict[str, int]) -> None:
    assert which(routed, "without-headers.test", x_user="mike") == "not-jason"
    # A request without the header at all is "without x-user: jason" too (Istio's semantics).
    assert which(routed, "without-headers.test") == "not-jason"
    assert which(routed, "without-headers.test", x_user="jason") == V1


def test_query_exact(routed: dict[str, int]) -> None:
    assert which(routed, "query-exact.test", "/?q=yes") == "q-yes"
    assert which(routed, "query-exact.test", "/search?a=1&q=yes") == "q-yes"
    for path in ("/?q=yesno", "/?other=yes", "/"):
        assert which(routed, "query-exact.test", path) == V1, path


def test_query_prefix(routed: dict[str, int]) -> None:
    assert which(routed, "query-prefix.test", "/?q=abc") == "q-ab"
    assert which(routed, "query-prefix.test", "/?q=xab") == V1


def test_query_regex(routed: dict[str, int]) -> None:
    assert which(routed, "query-regex.test", "/?q=123") == "q-digits"
    assert which(routed, "query-regex.test", "/?q=12a") == V1


def test_query_present(routed: dict[str, int]) -> None:
    assert which(routed, "query-present.test", "/?q=anything") == "q-present"
    assert which(routed, "query-present.test", "/?qq=1") == V1


def test_port(routed: dict[str, int]) -> None:
    assert which(routed, "port.test", port="second") == "second-port"
    assert which(routed, "port.test", port="main") == V1


def test_gateways_in_a_match(routed: dict[str, int]) -> None:
    assert which(routed, "gateways.test", port="gw-b") == "via-gw-b"
    assert which(routed, "gateways.test", port="main") == V1


def test_rule_order_first_match_wins(routed: dict[str, int]) -> None:
    assert which(routed, "order.test", "/a/b") == "first", "an earlier rule wins over a more specific later one"
    # Several matches in one rule: any of them; conditions inside one match: all of them.
    assert which(routed, "order.test", "/b") == "either"
    assert which(routed, "order.test", "/c", x_b="1") == "either"
    assert which(routed, "order.test", "/both", x_and="1") == "both"
    assert which(routed, "order.test", "/both") == V1
    # Nothing after the catch-all rule is reachable.
    assert which(routed, "order.test", "/z") == V1


def test_routes_as_envoy_holds_them(routed: dict[str, int], gateway: Proxy) -> None:
    """Envoy's own view: one virtual host per feature host, with the translated matchers."""
    config = gateway.admin.route_config(f"http.{routed['main']}")
    assert config is not None
    hosts = {vh["name"]: vh for vh in config["route_config"]["virtual_hosts"]}
    without = hosts[f"without-headers.test:{routed['main']}"]["routes"][0]["match"]["headers"][0]
    assert without["invert_match"] is True and without["treat_missing_header_as_empty"] is True
    order = hosts[f"order.test:{routed['main']}"]["routes"]
    assert len(order) == 6 and "route" in order[-1], "routes after the catch-all rule are not sent"
    assert all(vh.get("include_request_attempt_count") for vh in hosts.values()), hosts
    with httpx.Client() as client:
        assert ask(routed["main"], "unknown.test", client=client).status_code == 404
