"""Expressions from Istio 1.1's samples (samples/bookinfo/policy), its Helm chart's default
telemetry config, and istio.io's expression-language page: each type-checks against the
vocabulary and evaluates as Mixer would."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

import pytest

from libs.cexl import EvaluationError, ValueType, check, evaluate

S, B, I = ValueType.STRING, ValueType.BOOL, ValueType.INT64  # noqa: E741

DENY_LABEL = ('destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" '
              '&& source.labels["version"] == "v3"')
REVIEWS_V3 = {"destination.labels": {"app": "ratings"}, "source.labels": {"app": "reviews", "version": "v3"}}

SAMPLES: list[tuple[str, ValueType, dict[str, Any], Any]] = [
    # mixer-rule-deny-label.yaml
    (DENY_LABEL, B, REVIEWS_V3, True),
    (DENY_LABEL, B, {**REVIEWS_V3, "source.labels": {"app": "reviews", "version": "v2"}}, False),
    (DENY_LABEL, B, {**REVIEWS_V3, "destination.labels": {"app": "details"}}, False),
    (DENY_LABEL, B, {"destination.labels": {"app": "details"}}, False),  # && stops before source.labels
    (DENY_LABEL, B, {"destination.labels": {}, "source.labels": {}}, False),
    # mixer-rule-deny-whitelist.yaml (listentry value, and its rule)
    ('source.labels["version"]', S, {"source.labels": {"version": "v1"}}, "v1"),
    ('source.labels["version"]', S, {"source.labels": {}}, ""),
    ('destination.labels["app"] == "ratings"', B, {"destination.labels": {"app": "ratings"}}, True),
    # mixer-rule-productpage-ratelimit.yaml (quota dimensions, and the commented-out match)
    ('request.headers["x-forwarded-for"] | "unknown"', S, {"request.headers": {"x-forwarded-for": "10.0.0.9"}},
     "10.0.0.9"),
    ('request.headers["x-forwarded-for"] | "unknown"', S, {"request.headers": {}}, "unknown"),
    ('request.headers["x-forwarded-for"] | "unknown"', S, {}, "unknown"),
    ('destination.labels["app"] | destination.service.name | "unknown"', S, {"destination.labels": {"app": "reviews"}},
     "reviews"),
    ('destination.labels["app"] | destination.service.name | "unknown"', S,
     {"destination.labels": {}, "destination.service.name": "productpage"}, "productpage"),
    ('destination.labels["app"] | destination.service.name | "unknown"', S, {}, "unknown"),
    ('destination.labels["version"] | "unknown"', S, {"destination.labels": {"version": "v2"}}, "v2"),
    ('match(request.headers["cookie"], "user=*") == false', B, {"request.headers": {"cookie": "user=jason"}}, False),
    ('match(request.headers["cookie"], "user=*") == false', B, {"request.headers": {"cookie": "session=1"}}, True),
    ('match(request.headers["cookie"], "user=*") == false', B, {"request.headers": {}}, True),
    # mixer-rule-ratings-ratelimit.yaml
    ('source.labels["app"] | source.service | "unknown"', S, {"source.service": "reviews.default.svc.cluster.local"},
     "reviews.default.svc.cluster.local"),
    # mixer-rule-deny-ip.yaml
    ('source.ip | ip("0.0.0.0")', ValueType.IP_ADDRESS, {}, ipaddress.ip_address("0.0.0.0")),
    ('source.labels["istio"] == "ingressgateway"', B, {"source.labels": {"istio": "ingressgateway"}}, True),
    # mixer-rule-ingress-denial.yaml
    ('(source.labels["istio"] | "") == "ingressgateway" && (request.headers["x-user"] | "") == "john"', B,
     {"source.labels": {"istio": "ingressgateway"}, "request.headers": {"x-user": "john"}}, True),
    ('(source.labels["istio"] | "") == "ingressgateway" && (request.headers["x-user"] | "") == "john"', B, {}, False),
    # mixer-rule-deny-serviceaccount.yaml
    ('destination.labels["app"] == "details" && source.user == "cluster.local/ns/default/sa/bookinfo-productpage"', B,
     {"destination.labels": {"app": "details"}, "source.user": "cluster.local/ns/default/sa/bookinfo-productpage"},
     True),
    # mixer-rule-additional-telemetry.yaml
    ('conditional((context.reporter.kind | "inbound") == "outbound", "client", "server")', S,
     {"context.reporter.kind": "outbound"}, "client"),
    ('conditional((context.reporter.kind | "inbound") == "outbound", "client", "server")', S, {}, "server"),
    ('"twice the fun!"', S, {}, "twice the fun!"),
    ("2", I, {}, 2),
    # the Helm chart's metrics and access log
    ('source.workload.name | "unknown"', S, {"source.workload.name": "productpage-v1"}, "productpage-v1"),
    ('api.protocol | context.protocol | "unknown"', S, {"context.protocol": "http"}, "http"),
    ("response.code | 200", I, {}, 200),
    ("connection.mtls | false", B, {"connection.mtls": True}, True),
    ('response.duration | "0ms"', ValueType.DURATION, {}, datetime.timedelta(0)),
    ("request.total_size | connection.received.bytes | 0", I, {"connection.received.bytes": 17}, 17),
    ('request.headers["sec-istio-auth-userinfo"]| ""', S, {"request.headers": {}}, ""),
    ('request.api_key | request.headers["x-api-key"] | ""', S, {"request.headers": {"x-api-key": "k"}}, "k"),
    ('request.scheme | "http"', S, {}, "http"),
    # Istio's expression-language page (istio.io), and the comparisons Mixer rules commonly use
    ('destination.service.host == "ratings.default.svc.cluster.local"', B,
     {"destination.service.host": "ratings.default.svc.cluster.local"}, True),
    ('source.ip == ip("10.0.0.1")', B, {"source.ip": ipaddress.ip_address("10.0.0.1")}, True),
    ('source.ip == ip("10.0.0.1")', B, {"source.ip": ipaddress.ip_address("10.0.0.2")}, False),
    ('request.path.startsWith("/api")', B, {"request.path": "/api/v1"}, True),
    ('request.path.startsWith("/api")', B, {"request.path": "/productpage"}, False),
    ('conditional(request.headers["x"] == "", "none", request.headers["x"])', S, {"request.headers": {}}, "none"),
    ('conditional(request.headers["x"] == "", "none", request.headers["x"])', S, {"request.headers": {"x": "y"}}, "y"),
    ("request.size | 200", I, {}, 200),
    ('request.headers["x-forwarded-host"] == "myhost"', B, {"request.headers": {"x-forwarded-host": "myhost"}}, True),
    ('(request.headers["x-user-group"] == "admin") || (request.auth.principal == "admin")', B,
     {"request.headers": {"x-user-group": "admin"}}, True),
    ('(request.auth.principal | "nobody" ) == "user1"', B, {}, False),
    ('source.labels["app"]=="reviews" && source.labels["version"]=="v3"', B, REVIEWS_V3, True),
    ('request.auth.principal != "admin"', B, {"request.auth.principal": "admin"}, False),
    ('(request.size == 200) && (request.auth.principal == "admin")', B,
     {"request.size": 200, "request.auth.principal": "x"}, False),
    ("request.host + request.path", S, {"request.host": "a.io", "request.path": "/x"}, "a.io/x"),
    ("response.code > 200", B, {"response.code": 404}, True),
    ("request.size >= 100", B, {"request.size": 99}, False),
    ('source.labels["app"] | source.labels["svc"] | "unknown"', S, {"source.labels": {"svc": "s"}}, "s"),
    ('match(destination.service, "*.ns1.svc.cluster.local")', B,
     {"destination.service": "a.ns1.svc.cluster.local"}, True),
    ('email("awesome@istio.io")', ValueType.EMAIL_ADDRESS, {}, "awesome@istio.io"),
    ('dnsName("www.istio.io")', ValueType.DNS_NAME, {}, "www.istio.io"),
    ('source.ip == ip("10.11.12.13")', B, {"source.ip": ipaddress.ip_address("10.11.12.13")}, True),
    ('timestamp("2015-01-02T15:04:35Z")', ValueType.TIMESTAMP, {},
     datetime.datetime(2015, 1, 2, 15, 4, 35, tzinfo=datetime.UTC)),
    ('uri("http://istio.io")', ValueType.URI, {}, "http://istio.io"),
    ('"svc.*".matches(destination.service)', B, {"destination.service": "svc1.ns"}, True),
    ('destination.service.endsWith("acme")', B, {"destination.service": "x.acme"}, True),
    ("request.headers | emptyStringMap()", ValueType.STRING_MAP, {}, {}),
    ('toLower("User-Agent")', S, {}, "user-agent"),
    ('size("admin")', I, {}, 5),
    ('context.protocol == "tcp"', B, {"context.protocol": "tcp"}, True),
]


@pytest.mark.parametrize(("text", "value_type", "attributes", "expected"), SAMPLES)
def test_istio_sample(text: str, value_type: ValueType, attributes: dict[str, Any], expected: Any) -> None:
    assert check(text) is value_type
    assert evaluate(text, attributes) == expected


@pytest.mark.parametrize(("text", "attributes"), [
    (DENY_LABEL, {}),  # no destination.labels at all
    ('request.path.startsWith("/api")', {}),
    ('request.auth.principal == "user1"', {}),  # istio.io: "fails evaluation if ... missing"
    ('source.labels["version"]', {}),
])
def test_istio_samples_fail_on_absent_attributes(text: str, attributes: dict[str, Any]) -> None:
    with pytest.raises(EvaluationError, match="lookup failed"):
        evaluate(text, attributes)


def test_a_string_label_cannot_default_to_an_integer() -> None:
    # istio.io's own example of a type error: `request.size | 200` is an INT64.
    assert check("request.size | 200") is I
