"""referenced() and partial(): what an expression may read, and what it comes to when only
some attributes are known."""

from __future__ import annotations

from typing import Any

import pytest

from libs.cexl import CexlError, evaluate, parse, partial
from tests.unit.cexl.support import IP1

REFERENCED = [
    ('source.ip == ip("1.2.3.4")', {"source.ip"}),
    ('"1.2.3.4"', set()),
    ("connection.mtls && context.protocol == \"tcp\"", {"connection.mtls", "context.protocol"}),
    ('request.headers["x-user"] | "nobody"', {'request.headers["x-user"]'}),
    ('destination.labels["app"] | destination.service.name | "unknown"',
     {'destination.labels["app"]', "destination.service.name"}),
    ("request.headers[toLower(source.uid)]", {"request.headers", "source.uid"}),
    ("source.labels | emptyStringMap()", {"source.labels"}),
    ('(source.labels | destination.labels)["app"]', {'source.labels["app"]', 'destination.labels["app"]'}),
    ('conditional(connection.mtls, source.labels, destination.labels)["app"]',
     {"connection.mtls", 'source.labels["app"]', 'destination.labels["app"]'}),
    ('(source.labels | emptyStringMap())["app"]', {'source.labels["app"]'}),
    (r'request.headers["say \"hi\"\\"] == request.headers["é"]',
     {r'request.headers["say \"hi\"\\"]', 'request.headers["é"]'}),
    # Every attribute an evaluation may read, whichever way the short-circuits go.
    ('false && request.path.startsWith("/api")', {"request.path"}),
]


@pytest.mark.parametrize(("text", "names"), REFERENCED)
def test_referenced(text: str, names: set[str]) -> None:
    assert parse(text).referenced() == frozenset(names)


def test_a_keyed_reference_is_the_expression_that_reads_that_key() -> None:
    headers = {'say "hi"\\': "1", "é": "2"}
    for reference in parse(r'request.headers["say \"hi\"\\"] + request.headers["é"]').referenced():
        key = reference[len('request.headers["'):-2].encode().decode("unicode_escape").encode("latin-1").decode()
        assert evaluate(reference, {"request.headers": headers}) == headers[key]


RATINGS_FROM_REVIEWS_V3 = (
    'destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3"')
DESTINATION = {"destination.labels": {"app": "ratings", "version": "v1"}, "destination.namespace": "default",
               "destination.service.host": "ratings.default.svc.cluster.local"}

REVIEWS = {"destination.labels": {"app": "reviews"}}

PARTIAL: list[tuple[str, dict[str, Any], bool | None]] = [
    ('destination.labels["app"] == "ratings" && source.labels["v"] == "v3"', REVIEWS, False),
    ('source.labels["v"] == "v3" && destination.labels["app"] == "ratings"', REVIEWS, False),
    (RATINGS_FROM_REVIEWS_V3, DESTINATION, None),
    (RATINGS_FROM_REVIEWS_V3, {"destination.labels": {"app": "reviews"}}, False),
    (RATINGS_FROM_REVIEWS_V3, {**DESTINATION, "source.labels": {"app": "reviews", "version": "v3"}}, True),
    (RATINGS_FROM_REVIEWS_V3, {**DESTINATION, "source.labels": {"app": "reviews", "version": "v2"}}, False),
    (RATINGS_FROM_REVIEWS_V3, {}, None),
    ('destination.labels["app"] == "ratings"', DESTINATION, True),
    ('destination.labels["team"] == ""', DESTINATION, True),  # a missing key reads as ""
    ('destination.service.host == "ratings.default.svc.cluster.local"', DESTINATION, True),
    ('destination.service.host == "reviews.default.svc.cluster.local"', DESTINATION, False),
    ('!(destination.labels["app"] == "ratings")', DESTINATION, False),
    ('destination.labels["app"] != "ratings" || source.labels["app"] == "x"', DESTINATION, None),
    # The first operand may fail (source.labels absent), so the `||` is not certainly True...
    ('source.labels["app"] == "x" || destination.labels["app"] == "ratings"', DESTINATION, None),
    # ... unless a `|` default keeps it from failing.
    ('(source.labels["app"] | "") == "x" || destination.labels["app"] == "ratings"', DESTINATION, True),
    ('destination.labels["app"] == "ratings" || source.labels["app"] == "x"', DESTINATION, True),
    ('(destination.labels["owner"] | source.labels["app"]) == "x"', DESTINATION, None),
    ('(destination.labels["app"] | source.labels["app"]) == "ratings"', DESTINATION, True),
    ('(source.labels["istio"] | "") == "ingressgateway" && (request.headers["x-user"] | "") == "john"', DESTINATION,
     None),
    ('(source.labels["istio"] | "") == "ingressgateway"', {"source.labels": {}}, False),
    ('conditional(destination.labels["app"] == "ratings", "r", "o") == "o"', DESTINATION, False),
    ('conditional(source.labels["app"] == "x", "a", "b") == "c"', DESTINATION, False),
    ('conditional(source.labels["app"] == "x", "a", "b") == "a"', DESTINATION, None),
    ('match(request.headers["cookie"], "user=*") == false', DESTINATION, None),
    ('match(request.headers["cookie"], "user=*") == false', {"request.headers": {}}, True),
    ('match(request.headers["cookie"], "user=*") == false', {"request.headers": {"cookie": "user=jason"}}, False),
    ("connection.mtls", {}, None),
    ("connection.mtls", {"connection.mtls": True}, True),
    ("connection.mtls || true", {}, None),  # connection.mtls may be absent: the evaluation fails
    ("(connection.mtls | false) || true", {}, True),
    ("true || connection.mtls", {}, True),
    ("false && connection.mtls", {}, False),
    ('source.ip == ip("1.2.3.4")', {"source.ip": IP1}, True),
    ('source.ip == ip("1.2.3.4")', {"source.ip": "not an address"}, False),  # fails on every request
    ('ip(destination.labels["addr"]) == source.ip', DESTINATION, False),  # ip("") fails
    ('"^st.*".matches(destination.service.host)', DESTINATION, False),
    ('"^ratings".matches(destination.service.host)', DESTINATION, True),
    ('destination.service.host.startsWith(source.labels["app"])', DESTINATION, None),
    ('size(destination.labels["app"]) + 1 == 8', DESTINATION, True),
    ('destination.labels["app"] + "-" + destination.labels["version"] == "ratings-v1"', DESTINATION, True),
]


@pytest.mark.parametrize(("text", "known", "expected"), PARTIAL)
def test_partial(text: str, known: dict[str, Any], expected: bool | None) -> None:
    assert partial(text, known) is expected


def test_partial_agrees_with_evaluate_when_everything_is_known() -> None:
    attributes = {**DESTINATION, "source.labels": {"app": "reviews", "version": "v3"}, "request.headers": {},
                  "connection.mtls": False, "source.ip": IP1}
    for text, _, _ in PARTIAL:
        try:
            value = evaluate(text, attributes)
        except Exception:
            value = False  # a failing match applies no rule
        assert partial(text, attributes) is value, text


def test_partial_needs_a_bool_expression() -> None:
    with pytest.raises(CexlError, match="partial\\(\\) needs a BOOL expression, not STRING"):
        partial('destination.labels["app"] | "x"', {})
    with pytest.raises(CexlError, match="unknown attribute"):
        partial("nosuch == 1", {})
