"""Type checking: every operator's and function's types, Istio's vocabulary, and errors that
name the position and the problem."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from libs.cexl import VOCABULARY, CexlError, ValueType, check, parse
from tests.unit.cexl.support import DNS, DUR, EMAIL, IP, MAP, TEST_VOCABULARY, URI, B, D, I, S, T

TYPES = [
    # literals and attributes
    ('"abc"', S), ("42", I), ("4.2", D), ("true", B), ('"10ms"', DUR),
    ("abc", S), ("ai", I), ("ad", D), ("ab", B), ("at", T), ("adur", DUR), ("aip", IP), ("adns", DNS),
    ("amail", EMAIL), ("auri", URI), ("ar", MAP), ("x.y.z", S),
    # map index
    ('ar["b"]', S), ("ar[abc]", S), ('(ar | br)["foo"]', S), ('ar[toLower("K")]', S),
    # equality on every type but STRING_MAP
    ("abc == bs", B), ("ai != bi", B), ("ad == bd", B), ("ab == bb", B), ("at == bt", B), ("adur != bdur", B),
    ("aip == bip", B), ("adns == bdns", B), ("amail != bmail", B), ("auri == buri", B), ('adur == "1s"', B),
    ('aip == ip("1.2.3.4")', B),
    # ordering on strings, numbers, timestamps and durations
    ('abc < "b"', B), ("ai <= bi", B), ("ad > bd", B), ("t1 >= t2", B), ('adur > "100ms"', B), ("adns < bdns", B),
    # logic
    ("ab && bb", B), ("ab || bb || b1", B), ("!ab", B), ("!(ai == 2)", B),
    # `|` has its operands' type
    ('abc | "x"', S), ("ai | 42", I), ("ad | 4.2", D), ("ab | true", B), ('adur | "19ms"', DUR), ("at | bt", T),
    ('aip | ip("0.0.0.0")', IP), ("ar | emptyStringMap()", MAP), ('adns | dnsName("a.b")', DNS),
    # `+`
    ("abc + bs", S), ("ai + 2", I), ("ad + 2.0", D), ('abc | "unknown" + "b"', S),
    # functions
    ('match(abc, "*.svc")', B), ('"svc.*".matches(abc)', B), ("abc.matches(bs)", B), ('abc.startsWith("x")', B),
    ('abc.endsWith("x")', B), ('ip("10.0.0.1")', IP), ('timestamp("2015-01-02T15:04:35Z")', T),
    ('dnsName("istio.io")', DNS), ('email("a@istio.io")', EMAIL), ('uri("http://istio.io")', URI),
    ("emptyStringMap()", MAP), ('conditional(ab, "a", "b")', S), ("conditional(ab, 1, 2)", I),
    ("conditional(ab, at, bt)", T), ("conditional(ab, ar, br)", MAP), ('conditionalString(ab, "a", bs)', S),
    ("toLower(abc)", S), ("size(abc)", I), ('size("x") == 1', B), ('toLower(abc).startsWith("x")', B),
]


@pytest.mark.parametrize(("text", "value_type"), TYPES)
def test_types(text: str, value_type: ValueType) -> None:
    assert check(text, TEST_VOCABULARY) is value_type


ERRORS = [
    # names
    ('ar["app"] == "x" && abd == "x"', 20, "unknown attribute `abd` (did you mean `bd`?)"),
    ('ab == (nosuch | "x")', 7, "unknown attribute `nosuch`"),
    ("nosuch(1)", 0, "unknown function `nosuch`"),
    ("ab && abc.nosuch()", 10, "unknown function `nosuch`"),
    # comparisons
    ("ai == abc", 3, "cannot compare INT64 to STRING with '=='"),
    ("true == ai", 5, "cannot compare BOOL to INT64"),
    ("3.14 == ai", 5, "cannot compare DOUBLE to INT64"),
    ('1 < "a"', 2, "cannot compare INT64 to STRING with '<'"),
    ("t1 <= 42", 3, "cannot compare TIMESTAMP to INT64"),
    ("adns == abc", 5, "cannot compare DNS_NAME to STRING"),
    ('adur == "x"', 5, "cannot compare DURATION to STRING"),
    ('abc == "0"', 4, "cannot compare STRING to DURATION"),  # Mixer's rule: "0" is a duration
    ("ar == br", 3, "'==' is not defined on STRING_MAP"),
    ("ab < bb", 3, "'<' is not defined on BOOL"),
    ("aip > bip", 4, "'>' is not defined on IP_ADDRESS"),
    # logic
    ("ab && abc", 6, "'&&' needs BOOL operands, not STRING"),
    ("ai || ab", 0, "'||' needs BOOL operands, not INT64"),
    ("!abc", 0, "'!' needs a BOOL operand, not STRING"),
    ("abc", None, None),
    # `|` and `+`
    ("abc | 200", 4, "'|' needs operands of one type, got STRING and INT64"),
    ('ai | bi | "x"', 8, "'|' needs operands of one type, got INT64 and STRING"),
    ('1 + "b"', 2, "'+' needs operands of one type, got INT64 and STRING"),
    ("abc + 1.0", 4, "got STRING and DOUBLE"),
    ("ab + bb", 3, "'+' is not defined on BOOL"),
    ("at + bt", 3, "'+' is not defined on TIMESTAMP"),
    # map index
    ('abc["x"]', 3, "only a STRING_MAP can be indexed, not STRING"),
    ("ar[1]", 3, "a map key must be a STRING, not INT64"),
    ('ar["10s"]', 3, "a map key must be a STRING, not DURATION"),
    # calls
    ("ip()", 0, "`ip` takes 1 argument(s), got 0"),
    ('ip("1.2.3.4", "x")', 0, "`ip` takes 1 argument(s), got 2"),
    ("size()", 0, "`size` takes 1 argument(s), got 0"),
    ('conditional(ab, "x")', 0, "`conditional` takes 3 argument(s), got 2"),
    ("match(abc, 1)", 11, "argument 2 of `match` must be STRING, not INT64"),
    ("ip(2)", 3, "argument 1 of `ip` must be STRING, not INT64"),
    ("size(ar)", 5, "argument 1 of `size` must be STRING, not STRING_MAP"),
    ('conditional(ai, "a", "b")', 12, "argument 1 of `conditional` must be BOOL, not INT64"),
    ('conditional(ab, "a", 1)', 21, "argument 3 of `conditional` must be STRING, not INT64"),
    ('"aaa".matches(23)', 14, "argument 1 of `matches` must be STRING, not INT64"),
    ('matches("aaa")', 0, "`matches` is a method"),
    ("startsWith()", 0, "`startsWith` is a method"),
    ('abc.ip("1.2.3.4")', 4, "`ip` is a function, not a method"),
    ("abc.size()", 4, "`size` is a function, not a method"),
    ('ai.startsWith("x")', 0, "`startsWith` is a method of STRING, not INT64"),
    # literal arguments that can never convert, and patterns RE2 rejects
    ('ip("10.1.12")', 3, "could not convert 10.1.12 to IP_ADDRESS"),
    ('aip | ip("fe80::1%eth0")', 9, "could not convert"),
    ('timestamp("242233")', 10, "could not convert '242233' to TIMESTAMP"),
    ('dnsName("-foo.-bar")', 8, "invalid label \"-foo\""),
    ('email("barfoo")', 6, "error converting 'barfoo' to e-mail"),
    ('email("Istio <istio@istio.io>")', 6, "display names are not allowed"),
    ('uri(":/")', 4, "missing protocol scheme"),
    ('"(".matches(abc)', 0, "invalid RE2 regex '(': missing )"),
    (r'"(a)\\1".matches(abc)', 0, "invalid RE2 regex"),
    ('"(?=a)".matches(abc)', 0, "invalid RE2 regex"),
]


@pytest.mark.parametrize(("text", "position", "reason"), ERRORS)
def test_type_errors_name_the_position_and_the_problem(text: str, position: int | None, reason: str | None) -> None:
    if reason is None:
        check(text, TEST_VOCABULARY)
        return
    with pytest.raises(CexlError) as caught:
        check(text, TEST_VOCABULARY)
    assert caught.value.position == position
    assert reason in caught.value.reason


def test_misspelt_istio_attribute() -> None:
    with pytest.raises(CexlError) as caught:
        check('destination.labels["app"] == "ratings" && sourc.labels["app"] == "reviews"')
    assert str(caught.value) == "position 42: unknown attribute `sourc.labels` (did you mean `source.labels`?)"


def test_syntax_errors_come_through_check() -> None:
    with pytest.raises(CexlError, match="position 2: unexpected '='"):
        check("a = 2")


def test_a_dynamic_regex_is_not_checked() -> None:
    assert check("abc.matches(bs)", TEST_VOCABULARY) is B


ISTIO_TYPES = {
    "source.ip": IP, "destination.ip": IP, "origin.ip": IP, "source.labels": MAP, "destination.labels": MAP,
    "request.headers": MAP, "response.headers": MAP, "request.auth.claims": MAP, "request.query_params": MAP,
    "request.time": T, "response.time": T, "context.time": T, "response.duration": DUR,
    "connection.duration": DUR, "context.protocol": S, "connection.mtls": B, "destination.port": I,
    "response.code": I, "request.size": I, "destination.service.host": S, "destination.service.name": S,
    "source.principal": S, "source.user": S, "destination.service": S, "context.reporter.kind": S,
    "source.workload.name": S, "api.operation": S, "request.url_path": S, "check.cache_hit": B,
}


@pytest.mark.parametrize(("name", "value_type"), ISTIO_TYPES.items())
def test_istio_vocabulary(name: str, value_type: ValueType) -> None:
    assert VOCABULARY[name] is value_type
    assert check(name) is value_type


def test_vocabulary_is_an_immutable_hashable_mapping() -> None:
    assert isinstance(VOCABULARY, Mapping)
    assert len(VOCABULARY) > 80 and "source.labels" in VOCABULARY and "nosuch" not in VOCABULARY
    assert hash(VOCABULARY) == hash(VOCABULARY)
    assert dict(VOCABULARY) == VOCABULARY
    with pytest.raises(TypeError):
        VOCABULARY["x"] = S  # type: ignore[index]


def test_check_takes_text_or_expressions_and_any_mapping() -> None:
    expression = parse("ab == bb")
    assert check(expression, TEST_VOCABULARY) is check("ab == bb", dict(TEST_VOCABULARY)) is B
    with pytest.raises(CexlError, match="unknown attribute `ab`"):
        check(expression)
    with pytest.raises(TypeError):
        check("a", {"a": "STRING"})  # type: ignore[dict-item]
