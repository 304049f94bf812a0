"""Gateway analyzers (IST0101 selector, IST0104, IST0145) and DestinationRule analyzers
(IST0128, IST0129, IST0173, IST0113)."""

from __future__ import annotations

from libs.analysis import destination_rules, gateways, mtls
from tests.unit.analysis.cases import messages

GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: %s, namespace: default}
spec:
  selector: {istio: %s}
  servers:
  - port: {number: %d, name: http, protocol: HTTP}
    hosts: [%s]
"""


def test_a_selector_no_workload_carries_is_reported() -> None:
    assert messages(GATEWAY % ("gw", "ingress", 8080, "'*'"), analyzer=gateways.INGRESS_GATEWAY_PORTS) == [
        'Error [IST0101] (Gateway default/gw config.yaml[0]) Referenced selector not found: "istio=ingress"']


def test_a_port_the_gateway_service_does_not_reach_is_reported() -> None:
    # The Service maps 80 to the pods' 8080: Mizzen's gateway listens on the server's port itself.
    assert messages(GATEWAY % ("gw", "ingressgateway", 80, "'*'"), analyzer=gateways.INGRESS_GATEWAY_PORTS) == [
        "Warning [IST0104] (Gateway default/gw config.yaml[0]) The gateway refers to a port that is not exposed on "
        "the workload (pod selector istio=ingressgateway; port 80)"]
    assert messages(GATEWAY % ("gw", "ingressgateway", 8080, "'*'"), analyzer=gateways.INGRESS_GATEWAY_PORTS) == []


def test_a_gateway_no_service_fronts_has_no_ports_to_check() -> None:
    platform = """\
apiVersion: v1
kind: Pod
metadata: {name: ingress, namespace: istio-system, labels: {istio: ingressgateway}}
"""
    assert messages(GATEWAY % ("gw", "ingressgateway", 80, "'*'"), analyzer=gateways.INGRESS_GATEWAY_PORTS,
                    platform=platform) == []


def test_gateways_claiming_one_host_on_one_port_of_one_workload_conflict() -> None:
    config = GATEWAY % ("a", "ingressgateway", 8080, "'*.example.com'") + "---\n" + \
        GATEWAY % ("b", "ingressgateway", 8080, "shop.example.com")
    assert messages(config, analyzer=gateways.CONFLICTING_GATEWAYS) == [
        "Error [IST0145] (Gateway default/a config.yaml[0]) Conflict with gateways default/b (workload selector "
        "istio=ingressgateway, port 8080, hosts *.example.com).",
        "Error [IST0145] (Gateway default/b config.yaml[1]) Conflict with gateways default/a (workload selector "
        "istio=ingressgateway, port 8080, hosts shop.example.com).",
    ]


def test_gateways_on_other_hosts_ports_or_workloads_do_not_conflict() -> None:
    for other in (GATEWAY % ("b", "ingressgateway", 8080, "shop.example.org"),
                  GATEWAY % ("b", "ingressgateway", 9090, "shop.example.com"),
                  GATEWAY % ("b", "egressgateway", 8080, "shop.example.com")):
        config = GATEWAY % ("a", "ingressgateway", 8080, "'*.example.com'") + "---\n" + other
        assert messages(config, analyzer=gateways.CONFLICTING_GATEWAYS) == []


RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
"""


def test_tls_without_ca_certificates_is_reported_at_both_levels() -> None:
    config = RULE + """\
  trafficPolicy:
    tls: {mode: SIMPLE}
    portLevelSettings:
    - port: {number: 9443}
      tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}
"""
    assert messages(config, analyzer=destination_rules.CA_CERTIFICATES) == [
        "Warning [IST0128] (DestinationRule default/reviews config.yaml[0]) DestinationRule default/reviews in "
        "namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for "
        "host: reviews",
        "Warning [IST0129] (DestinationRule default/reviews config.yaml[0]) DestinationRule default/reviews in "
        "namespace default has TLS mode set to MUTUAL but no caCertificates are set to validate server identity for "
        "host: reviews at port 9443",
    ]


def test_tls_that_verifies_the_server_or_is_istios_own_is_fine() -> None:
    for tls in ("{mode: SIMPLE, caCertificates: /ca.pem}", "{mode: SIMPLE, credentialName: reviews-ca}",
                "{mode: ISTIO_MUTUAL}", "{mode: DISABLE}"):
        config = RULE + f"  trafficPolicy:\n    tls: {tls}\n"
        assert messages(config, analyzer=destination_rules.CA_CERTIFICATES) == [], tls


def test_a_subset_no_workload_behind_the_host_carries_is_reported() -> None:
    config = RULE + "  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v4, labels: {version: v4}}\n"
    assert messages(config, analyzer=destination_rules.SUBSET_SELECTS_PODS) == [
        "Error [IST0173] (DestinationRule default/reviews config.yaml[0]) The Subset v4 defined in the "
        "DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream)."]


def test_subsets_of_a_service_entry_match_its_selected_workloads() -> None:
    config = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-vm, namespace: default}
spec:
  hosts: [reviews.vm.internal]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-vm, namespace: default}
spec:
  host: reviews.vm.internal
  subsets: [{name: v2, labels: {version: v2}}]
"""
    assert messages(config, analyzer=destination_rules.SUBSET_SELECTS_PODS) == []


PEER = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: %s}
---
"""


def test_plain_text_to_workloads_requiring_mtls_conflicts() -> None:
    config = PEER % "STRICT" + RULE + "  trafficPolicy:\n    tls: {mode: DISABLE}\n"
    assert messages(config, analyzer=mtls.MTLS) == [
        'Error [IST0113] (DestinationRule default/reviews config.yaml[1]) A DestinationRule and Policy are in '
        'conflict with regards to mTLS for host reviews.default.svc.cluster.local. The DestinationRule '
        '"default/reviews" specifies that mTLS must be false but the Policy object "default/default" specifies '
        'STRICT.']


def test_istio_mtls_to_workloads_that_turned_it_off_conflicts() -> None:
    config = PEER % "DISABLE" + RULE + "  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n"
    assert [line.split(" (")[0] for line in messages(config, analyzer=mtls.MTLS)] == ["Error [IST0113]"]


def test_matching_or_automatic_mtls_does_not_conflict() -> None:
    for mode, tls in (("STRICT", "\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}"), ("STRICT", ""),
                      ("PERMISSIVE", "\n  trafficPolicy:\n    tls: {mode: DISABLE}")):
        assert messages(PEER % mode + RULE.rstrip("\n") + tls + "\n", analyzer=mtls.MTLS) == [], (mode, tls)


def test_a_workload_policy_overrides_the_namespace_policy() -> None:
    workload = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews-plain, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: PERMISSIVE}
---
"""
    config = PEER % "STRICT" + workload + RULE + "  trafficPolicy:\n    tls: {mode: DISABLE}\n"
    assert messages(config, analyzer=mtls.MTLS) == []
