"""Kubernetes Service port names (IST0118), AuthorizationPolicy references (IST0101,
IST0127) and validation as analysis (IST0106, IST0133)."""

from __future__ import annotations

from libs.analysis import authorization, schema, service_ports
from tests.unit.analysis.cases import messages

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: default}
spec:
  selector: {app: shop}
  ports: [%s]
"""


def test_a_port_name_istio_cannot_read_a_protocol_from_is_reported() -> None:
    platform = SERVICE % "{name: web, port: 80, targetPort: 8080}"
    assert messages("", analyzer=service_ports.PORT_NAMES, platform=platform) == [
        "Info [IST0118] (Service default/shop platform.yaml[0]) Port name web (port: 80, targetPort: 8080) doesn't "
        "follow the naming convention of Istio port."]


def test_conventional_names_app_protocols_and_udp_are_fine() -> None:
    for port in ("{name: http, port: 80}", "{name: http-web, port: 80}", "{name: grpc-web, port: 80}",
                 "{name: web, port: 80, appProtocol: http}", "{name: dns, port: 53, protocol: UDP}"):
        assert messages("", analyzer=service_ports.PORT_NAMES, platform=SERVICE % port) == [], port


POLICY = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: %s}}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [%s]
        namespaces: [%s]
"""


def test_unknown_namespaces_principals_and_selectors_are_reported() -> None:
    config = POLICY % ("reviewz", "cluster.local/ns/default/sa/bookinfo-nobody", "shop")
    assert messages(config, analyzer=authorization.AUTHORIZATION_POLICIES) == [
        'Error [IST0101] (AuthorizationPolicy default/reviews-viewer config.yaml[0]) Referenced namespace not found: '
        '"shop"',
        'Error [IST0101] (AuthorizationPolicy default/reviews-viewer config.yaml[0]) Referenced principal not found: '
        '"cluster.local/ns/default/sa/bookinfo-nobody"',
        "Warning [IST0127] (AuthorizationPolicy default/reviews-viewer config.yaml[0]) No matching workloads for "
        "this resource with the following labels: app=reviewz",
    ]


def test_known_namespaces_identities_wildcards_and_foreign_trust_domains_are_fine() -> None:
    for principals, namespaces in (('"cluster.local/ns/default/sa/bookinfo-ratings"', "default"),
                                   ('"spiffe://cluster.local/ns/default/sa/bookinfo-reviews"', "istio-system"),
                                   ('"*/sa/bookinfo-ratings"', "'*'"), ('"cluster.local/ns/default/*"', "def*"),
                                   ('"other.domain/ns/x/sa/y"', "default")):
        config = POLICY % ("reviews", principals, namespaces)
        assert messages(config, analyzer=authorization.AUTHORIZATION_POLICIES) == [], principals


def test_validation_errors_and_warnings_are_schema_messages() -> None:
    config = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 40}
    - {destination: {host: reviews, subset: v2}, weight: 50}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: ["./*", "./*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: twice, namespace: default}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
  - route: [{destination: {host: ratings}}]
"""
    assert messages(config, analyzer=schema.SCHEMA) == [
        "Warning [IST0133] (Sidecar default/default config.yaml[1]) Schema validation warning: "
        "spec.egress[0].hosts[1]: duplicated egress host './*'",
        "Error [IST0106] (VirtualService default/bad config.yaml[0]) Schema validation error: spec.http[0].route: "
        "weights sum to 90, must be 100",
    ]
