"""VirtualService analyzers: what it names must exist (IST0101, IST0132), and its rules
must all be reachable (IST0109, IST0130, IST0131)."""

from __future__ import annotations

from libs.analysis import virtual_service_refs as refs
from libs.analysis import virtual_service_rules as rules
from tests.unit.analysis.cases import messages

REVIEWS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: %s}
"""

SUBSETS = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: %s}
"""

GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [bookinfo.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: [%s]
  gateways: [%s]
  http:
  - route:
    - destination: {host: reviews}
"""


def test_a_destination_host_no_service_defines_is_reported() -> None:
    assert messages(REVIEWS % "ratings2", analyzer=refs.DESTINATION_HOSTS) == [
        'Error [IST0101] (VirtualService default/reviews config.yaml[0]) Referenced host not found: "ratings2"']


def test_hosts_of_services_and_service_entries_are_found() -> None:
    entry = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wiki, namespace: default}
spec:
  hosts: ["*.wikipedia.org"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
---
"""
    assert messages(REVIEWS % "ratings", analyzer=refs.DESTINATION_HOSTS) == []
    assert messages(REVIEWS % "ratings.default.svc.cluster.local", analyzer=refs.DESTINATION_HOSTS) == []
    assert messages(entry + REVIEWS % "en.wikipedia.org", analyzer=refs.DESTINATION_HOSTS) == []


def test_a_mirror_host_and_a_port_the_service_lacks_are_reported() -> None:
    config = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, port: {number: 9081}}
    mirror: {host: shadow}
"""
    assert messages(config, analyzer=refs.DESTINATION_HOSTS) == [
        'Error [IST0101] (VirtualService default/reviews config.yaml[0]) Referenced host:port not found: '
        '"reviews:9081"',
        'Error [IST0101] (VirtualService default/reviews config.yaml[0]) Referenced mirror host not found: "shadow"']


def test_host_checks_are_skipped_when_the_platform_is_unknown() -> None:
    assert messages(REVIEWS % "ratings2", analyzer=refs.DESTINATION_HOSTS, known=False) == []


def test_a_subset_no_destination_rule_defines_is_reported() -> None:
    assert messages(SUBSETS % "v4", analyzer=refs.DESTINATION_RULES) == [
        'Error [IST0101] (VirtualService default/reviews config.yaml[1]) Referenced host+subset in destinationrule '
        'not found: "reviews.default.svc.cluster.local+v4"']
    assert messages(SUBSETS % "v1", analyzer=refs.DESTINATION_RULES) == []


def test_a_missing_gateway_and_hosts_the_gateway_does_not_serve_are_reported() -> None:
    assert messages(GATEWAY % ("bookinfo.example.com", "nope"), analyzer=refs.GATEWAYS) == [
        'Error [IST0101] (VirtualService default/bookinfo config.yaml[1]) Referenced gateway not found: "nope"']
    assert messages(GATEWAY % ("other.example.com", "bookinfo-gateway"), analyzer=refs.GATEWAYS) == [
        "Warning [IST0132] (VirtualService default/bookinfo config.yaml[1]) one or more host [other.example.com] "
        "defined in VirtualService default/bookinfo not found in Gateway default/bookinfo-gateway."]
    assert messages(GATEWAY % ("bookinfo.example.com", "default/bookinfo-gateway"), analyzer=refs.GATEWAYS) == []
    assert messages(GATEWAY % ("reviews", "mesh"), analyzer=refs.GATEWAYS) == []


def test_two_virtual_services_for_one_host_on_the_mesh_conflict() -> None:
    second = (REVIEWS % "reviews").replace("name: reviews,", "name: reviews-2,")
    found = messages(REVIEWS % "reviews" + "---\n" + second, analyzer=rules.CONFLICTING_MESH_GATEWAY_HOSTS)
    assert [line.split(")")[0] for line in found] == [
        "Error [IST0109] (VirtualService default/reviews config.yaml[0]",
        "Error [IST0109] (VirtualService default/reviews-2 config.yaml[1]"]
    assert found[0].endswith(
        "The VirtualServices default/reviews,default/reviews-2 associated with mesh gateway define the same host "
        "*/reviews.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging "
        "the conflicting VirtualServices into a single resource.")


def test_one_for_the_mesh_and_one_for_a_gateway_do_not_conflict() -> None:
    second = (REVIEWS % "reviews").replace("name: reviews,", "name: reviews-2,").replace(
        "  http:", "  gateways: [bookinfo-gateway]\n  http:")
    assert messages(REVIEWS % "reviews" + "---\n" + second, analyzer=rules.CONFLICTING_MESH_GATEWAY_HOSTS) == []


def test_rules_and_matches_earlier_rules_take_are_reported() -> None:
    config = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews}}]
  - match: [{headers: {end-user: {exact: jason}}}, {uri: {prefix: /v2}}]
    route: [{destination: {host: reviews}}]
  - match: [{name: again, headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
"""
    assert messages(config, analyzer=rules.MATCHES) == [
        "Warning [IST0130] (VirtualService default/reviews config.yaml[0]) VirtualService rule #2 not used (all "
        "matches used by prior rules).",
        "Warning [IST0130] (VirtualService default/reviews config.yaml[0]) VirtualService rule #4 not used (only the "
        "last rule can have no matches).",
        'Info [IST0131] (VirtualService default/reviews config.yaml[0]) VirtualService rule #1 match #0 is not used '
        '(duplicate/overlapping match in rule "jason").',
        'Info [IST0131] (VirtualService default/reviews config.yaml[0]) VirtualService rule #2 match "again" is not '
        'used (duplicate/overlapping match in rule "jason").',
    ]


def test_distinct_matches_and_one_catch_all_last_are_fine() -> None:
    assert messages(SUBSETS % "v1", analyzer=rules.MATCHES) == []
