"""Evaluation: every operator and function, Mixer's absence rules (`|` alternatives, absent
attributes, missing map keys), short-circuiting and RE2.  Many cases are Mixer's own
(mixer/pkg/il/testing/tests.go)."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

import pytest

from libs.cexl import EvaluationError, evaluate, parse
from tests.unit.cexl.support import IP1, IP2, T1, T2, TEST_VOCABULARY, Recording

MS = datetime.timedelta(milliseconds=1)

CASES: list[tuple[str, dict[str, Any], Any]] = [
    # literals and attributes
    ('"ABC"', {}, "ABC"), ("456789", {}, 456789), ("456.789", {}, 456.789), ("true", {}, True),
    ('"19ms"', {}, 19 * MS), ("ai", {"ai": 2346}, 2346), ("ad", {"ad": 23.46}, 23.46), ("ad", {"ad": 2}, 2.0),
    ("abc", {"abc": "AAA"}, "AAA"), ("ab", {"ab": True}, True), ("at", {"at": T1}, T1), ("aip", {"aip": IP1}, IP1),
    ("aip", {"aip": b"\x01\x02\x03\x04"}, IP1),
    ("adur", {"adur": 20 * MS}, 20 * MS),
    ("ar", {"ar": {"b": "c"}}, {"b": "c"}),
    # map index: a missing key of a present map reads as ""
    ('ar["b"]', {"ar": {"b": "c"}}, "c"),
    ('ar["x"]', {"ar": {"b": "c"}}, ""),
    ("sm[abc]", {"abc": "foo", "sm": {"foo": "bar"}}, "bar"),
    ('ar["b"] == ""', {"ar": {}}, True), ('(ar | br)["foo"]', {"br": {"foo": "far"}}, "far"),
    ('(ar | br)["foo"]', {"ar": {"foo": "bar"}, "br": {"foo": "far"}}, "bar"),
    # `|`: the first present operand
    ('abc | "user1"', {}, "user1"), ('abc | "user1"', {"abc": "a2"}, "a2"), ('abc | ""', {}, ""),
    ('abc | bs | "user1"', {"bs": "b2"}, "b2"), ('abc | bs | "user1"', {"abc": "a2", "bs": "b2"}, "a2"),
    ("ai | 42", {"ai": 0}, 0), ("ai | bi | 42", {}, 42), ("ad | bd | 42.1", {"bd": 20.0}, 20.0),
    ("ab | true", {"ab": False}, False), ("ab | bb | true", {"bb": False}, False), ('adur | "19ms"', {}, 19 * MS),
    ("at | bt", {"bt": T2}, T2), ("aip | bip", {"bip": IP2}, IP2), ('aip | ip("1.2.3.4")', {}, IP1),
    ('ar["c"] | "foo"', {}, "foo"),
    ('ar["c"] | "foo"', {"ar": {"c": "b"}}, "b"),
    ('ar["c"] | "foo"', {"ar": {}}, "foo"),
    ('ar[abc] | "foo"', {}, "foo"), ('ar[abc] | "foo"', {"ar": {"abc": "bar"}}, "foo"),
    ('ar[abc] | "foo"', {"ar": {"abc": "bar"}, "abc": "!!!!"}, "foo"),
    ('ar[abc] | "foo"', {"ar": {"abcval": "bar"}, "abc": "abcval"}, "bar"),
    ('ar["b"] | ar["c"] | "null"', {"ar": {}}, "null"), ('ar["b"] | ar["c"] | "null"', {"ar": {"c": "b"}}, "b"),
    ('"foo" | "bar"', {}, "foo"), ('"foo".startsWith("bar") | true', {}, False),
    ('ab | "foo".startsWith("f")', {}, True), ('abc | conditional(ab, "foo", "bar") | bs', {"ab": False}, "bar"),
    ('ip(abc | "5.6.7.8")', {}, ipaddress.ip_address("5.6.7.8")), ("ar | emptyStringMap()", {}, {}),
    ("emptyStringMap() | ar", {"ar": {"test": "foo"}}, {}), ('(abc | "nobody") == "user1"', {}, False),
    ('abc | "a" + "b"', {}, "ab"),
    ('abc | "unknown" + "b"', {"abc": "a"}, "ab"),
    ('abc + (bs | "b") + "c"', {"abc": "a"}, "abc"),
    # equality
    ("3 == 2", {}, False), ("3 != 2", {}, True), ('"ABC" == "ABC"', {}, True), ("23.45 != 45.23", {}, True),
    ("true == false", {}, False),
    ("ai == 2", {"ai": 0x7F000000FF000000}, False),
    ("ab == bb", {"ab": True, "bb": True}, True),
    ("t1 == t2", {"t1": T1, "t2": T1}, True), ("t1 != t2", {"t1": T1, "t2": T2}, True),
    ("t1 == t2", {"t1": T1, "t2": T1.astimezone(datetime.timezone(datetime.timedelta(hours=5)))}, True),
    ("t1 == t2", {"t1": T1, "t2": T1.replace(tzinfo=None)}, True), ('adur == "20ms"', {"adur": 20 * MS}, True),
    ("aip == bip", {"aip": IP1, "bip": IP2}, False), ('aip == ip("1.2.3.4")', {"aip": IP1}, True),
    ('aip == ip("::ffff:1.2.3.4")', {"aip": IP1}, True), ('ip("0.0.0.0") == ip("::")', {}, False),
    ("adns == bdns", {"adns": "foo.bar.com", "bdns": "fOO.bar.com"}, True),
    ("adns != bdns", {"adns": "foo.bar.com", "bdns": "bar.foo.com"}, True),
    ('dnsName("foo.bar.baz") == dnsName("foo.Bar.baz.")', {}, True),
    ('dnsName("xn--bcher-kva.example") == dnsName("BÜCHER.example")', {}, True),
    ('(adns | dnsName("foo.bar.baz")) == dnsName("foo.Bar.baz.")', {"adns": "foo.bar.com"}, False),
    ("amail == bmail", {"amail": '"istio"@istio.io', "bmail": "istio@ISTIO.io"}, True),
    ("amail == bmail", {"amail": "istio@istio.io", "bmail": "pilot@istio.io"}, False),
    ("amail == bmail", {"amail": "Istio@istio.io", "bmail": "istio@istio.io"}, False),
    ("auri == buri", {"auri": "http://foo.bar.com", "buri": "http://fOO.bar.com"}, True),
    ("auri == buri", {"auri": "http://istio.io:80", "buri": "http://istio.io:81"}, False),
    ("auri == buri", {"auri": "HTTP://istio.io/a?b#c", "buri": "http://istio.io/a?b#c"}, True),
    ("auri == buri", {"auri": "urn:foo", "buri": "urn:Foo"}, False),
    ('uri("http://foo.bar.baz") == uri("http://foo.Bar.baz.")', {}, True),
    # ordering
    ("1 < 2", {}, True), ("1 <= 1", {}, True), ("2 > 1", {}, True), ("1 >= 2", {}, False), ("1.0 < 1.0", {}, False),
    ('"a" < "b"', {}, True), ('"b" <= "a"', {}, False), ('abc > bs', {"abc": "b", "bs": "a"}, True),
    ("ai >= bi", {"ai": 1, "bi": 2}, False), ("ad <= bd", {"ad": 1.0, "bd": 2.0}, True),
    ('timestamp("2015-01-02T15:04:35Z") < timestamp("2015-01-02T15:04:36Z")', {}, True),
    ("t1 <= t2", {"t1": T1, "t2": T2}, False), ("t2 <= t1", {"t1": T1, "t2": T2}, True), ("t1 > t1", {"t1": T1}, False),
    ("t1 >= t1", {"t1": T1}, True),
    ('adur > "100ms"', {"adur": 101 * MS}, True),
    ('adur <= "1s"', {"adur": 2000 * MS}, False),
    # logic
    ("false || false || false", {}, False), ("false || true || false", {}, True), ("true && true && true", {}, True),
    ("true && false && true", {}, False), ("b1 && b2", {"b1": True, "b2": False}, False), ("!ab", {"ab": False}, True),
    ("(ai == 20 && bi == 10) || ai == 30", {"ai": 20, "bi": 10}, True),
    ('ai == 20 || ar["b"] == "c"', {"ai": 19, "ar": {"b": "c"}}, True),
    # `+`
    ("abc + bs", {"abc": "a", "bs": "b"}, "ab"), ("ai + 2", {"ai": 1}, 3), ("ad + bd", {"ad": 1.0, "bd": 2.0}, 3.0),
    ("ai + 1", {"ai": 2**63 - 1}, -(2**63)), ("adns + bdns", {"adns": "istio.", "bdns": "io"}, "istio.io"),
    # functions
    ('match(abc, "*.ns1.cluster")', {"abc": "svc1.ns1.cluster"}, True),
    ('match(abc, "*.ns1.cluster")', {"abc": "svc1.ns2.cluster"}, False),
    ('match(abc, "curl*")', {"abc": "curlish"}, True), ('match(abc, "curl")', {"abc": "curlish"}, False),
    ('match(abc, "a*b")', {"abc": "axb"}, False),
    ('match(abc, "a*b")', {"abc": "a*b"}, True),
    ('match(abc, "*")', {"abc": ""}, True),
    ('"abc".startsWith("abc")', {}, True),
    ('"abfood".startsWith("abc")', {}, False),
    ("abc.startsWith(bs)", {"abc": "abcd", "bs": "ab"}, True),
    ('"abcd".endsWith("bcd")', {}, True), ("abc.endsWith(bs)", {"abc": "bcda", "bs": "abc"}, False),
    ('ip("10.0.0.1")', {}, ipaddress.ip_address("10.0.0.1")),
    ('ip("2001:db8::1")', {}, ipaddress.ip_address("2001:db8::1")),
    ("ip(abc)", {"abc": "1.2.3.4"}, IP1), ('ip(ar["foo"])', {"ar": {"foo": "1.2.3.4"}}, IP1),
    ('timestamp("2015-01-02T15:04:35Z")', {}, T1), ('timestamp("2015-01-02T16:04:35.5+01:00")', {}, T1 + 500 * MS),
    ('dnsName("foo.bar.baz")', {}, "foo.bar.baz"), ("dnsName(abc)", {"abc": "foo.bar"}, "foo.bar"),
    ('dnsName(abc | bs | "foo")', {}, "foo"), ('email("istio@istio.io")', {}, "istio@istio.io"),
    ("email(abc)", {"abc": '"istio"@istio.io'}, '"istio"@istio.io'), ('email("<a@istio.io>")', {}, "<a@istio.io>"),
    ('uri("urn:foo")', {}, "urn:foo"), ("uri(abc)", {"abc": "http://istio.io"}, "http://istio.io"),
    ("emptyStringMap()", {}, {}), ('conditional(true, "aa", "bb")', {}, "aa"), ("conditional(false, 43, 24)", {}, 24),
    ("conditional(ab, 43.25, 25.43)", {"ab": False}, 25.43),
    ("conditional(ab, at, bt)", {"ab": False, "at": T1, "bt": T2}, T2),
    ('conditionalString(ab, "x", "y")', {"ab": True}, "x"), ('toLower("User-Agent")', {}, "user-agent"),
    ("toLower(abc)", {"abc": "ÀB"}, "àb"),
    ('size("x")', {}, 1),
    ("size(abc)", {"abc": "two"}, 3),
    ('size("héllo")', {}, 6),
    ('ar[toLower(abc)] == "curlish"', {"ar": {"user-agent": "curlish"}, "abc": "uSeR-agEnT"}, True),
    # RE2: unanchored search, Go's argument order (the pattern is the target)
    ('"st.*".matches("str1")', {}, True), ('"r1".matches("str1")', {}, True), ('"^r1".matches("str1")', {}, False),
    ('"ab.*d".matches("abc")', {}, False), ("abc.matches(bs)", {"abc": "st.*", "bs": "str1"}, True),
    ('"(?i)^ABC$".matches(abc)', {"abc": "abc"}, True), ('"^.$".matches(abc)', {"abc": "é"}, True),
    (r'"^\\d{3}$".matches(abc)', {"abc": "123"}, True), (r'"^\\pL+$".matches(abc)', {"abc": "Ünïcödé"}, True),
    ('"(a+)+$".matches(abc)', {"abc": "a" * 5000 + "!"}, False),
]


@pytest.mark.parametrize(("text", "attributes", "expected"), CASES)
def test_evaluate(text: str, attributes: dict[str, Any], expected: Any) -> None:
    result = evaluate(text, attributes, TEST_VOCABULARY)
    assert result == expected
    assert type(result) is type(expected) or isinstance(expected, dict | ipaddress.IPv4Address)


FAILURES: list[tuple[str, dict[str, Any], str]] = [
    ("ai == 2", {}, "lookup failed: 'ai'"), ("2 != ai", {"bi": 2}, "lookup failed: 'ai'"),
    ("ai == 20 && bi == 10", {}, "lookup failed: 'ai'"), ('ar["x"] == "aaa"', {"br": {}}, "lookup failed: 'ar'"),
    ('ar[abc] == "aaa"', {"ar": {}}, "lookup failed: 'abc'"), ("match(abc, bs)", {"abc": "x"}, "lookup failed: 'bs'"),
    ("ab", {}, "lookup failed: 'ab'"), ("ai | bi", {}, "lookup failed: 'bi'"),
    # Calls and comparisons are never absent: `|` does not catch their failures.
    ("ip(abc) | ip(bs)", {"bs": "1.2.3.4"}, "lookup failed: 'abc'"), ("ip(abc | bs)", {}, "lookup failed: 'bs'"),
    ('(abc == "x") | true', {}, "lookup failed: 'abc'"),
    ('conditionalString(true, "x", abc)', {}, "lookup failed: 'abc'"),  # an extern: every argument is evaluated
    ("ip(abc)", {"abc": "10.1.12"}, "could not convert 10.1.12 to IP_ADDRESS"),
    ("timestamp(abc)", {"abc": "2015-01-02"}, "could not convert '2015-01-02' to TIMESTAMP"),
    ("dnsName(abc)", {"abc": ""}, "error converting '' to dns name: 'idna: invalid label \"\"'"),
    ("dnsName(abc)", {"abc": "-foo.-bar"}, "invalid label \"-foo\""),
    ("dnsName(abc)", {"abc": "a" * 64 + ".io"}, "invalid label"),
    ("email(abc)", {"abc": "barfoo"}, "error converting 'barfoo' to e-mail"), ("email(abc)", {"abc": ""}, "e-mail"),
    ("uri(abc)", {"abc": ":/"}, "error converting string to uri"), ("uri(abc)", {"abc": ""}, "empty string"),
    ("uri(abc)", {"abc": "http://a/%zz"}, "invalid URL escape"), ("uri(abc)", {"abc": "http://a:b/"}, "Port"),
    ("abc.matches(bs)", {"abc": "(", "bs": "x"}, "invalid RE2 regex '('"),
    ("amail == bmail", {"amail": "nope", "bmail": "a@b.c"}, "cannot compare e-mail addresses"),
    # values of the wrong type
    ("ai == 2", {"ai": "2"}, "attribute 'ai' should be INT64, not str"),
    ("ai == 1", {"ai": True}, "should be INT64, not bool"),
    ("ab", {"ab": 1}, "should be BOOL, not int"), ('abc == "x"', {"abc": 1}, "should be STRING, not int"),
    ("aip == bip", {"aip": "nope", "bip": IP1}, "should be IP_ADDRESS"),
    ("at == bt", {"at": 1, "bt": T1}, "should be TIMESTAMP"),
    ('ar["b"]', {"ar": ["b"]}, "should be STRING_MAP"), ('ar["b"] + "x"', {"ar": {"b": 1}}, "evaluating"),
]


@pytest.mark.parametrize(("text", "attributes", "message"), FAILURES)
def test_evaluation_failures(text: str, attributes: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationError) as caught:
        evaluate(text, attributes, TEST_VOCABULARY)
    assert message in str(caught.value)


SHORT_CIRCUITS = [
    ("false && ai == 1", {}, False, ["ai"]), ("true || ai == 1", {}, True, ["ai"]),
    ("ab || ai == 1", {"ab": True}, True, ["ai"]), ("ab && ai == 1", {"ab": False}, False, ["ai"]),
    ("b1 && b2 && ai == 1", {"b1": True, "b2": False}, False, ["ai"]),
    ('conditional(true, "x", abc)', {}, "x", ["abc"]), ('conditional(ab, abc, "y")', {"ab": False}, "y", ["abc"]),
    ('"x" | abc', {}, "x", ["abc"]), ('abc | bs | "z"', {"abc": "a"}, "a", ["bs"]),
    ('ar["k"] | bs', {"ar": {"k": "v"}}, "v", ["bs"]),
]


@pytest.mark.parametrize(("text", "attributes", "expected", "unread"), SHORT_CIRCUITS)
def test_short_circuits(text: str, attributes: dict[str, Any], expected: Any, unread: list[str]) -> None:
    recording = Recording(attributes)
    assert evaluate(text, recording, TEST_VOCABULARY) == expected
    assert not set(unread) & set(recording.probed)


def test_absent_attributes_are_probed_with_in_so_a_recorder_sees_them() -> None:
    recording = Recording({"bs": "b"})
    assert evaluate('abc | bs | "c"', recording, TEST_VOCABULARY) == "b"
    assert recording.probed == ["abc", "bs", "bs"]


def test_map_keys_are_read_with_get() -> None:
    class Keys(dict[str, str]):
        asked: list[str] = []

        def get(self, key: str, default: Any = None) -> Any:
            self.asked.append(key)
            return super().get(key, default)

    headers = Keys({"a": "1"})
    assert evaluate('ar["a"] + ar["b"]', {"ar": headers}, TEST_VOCABULARY) == "1"
    assert headers.asked == ["a", "b"]


def test_expressions_and_text_evaluate_alike_with_the_default_vocabulary() -> None:
    attributes = {"request.headers": {"x-user": "john"}, "source.ip": IP1}
    text = '(request.headers["x-user"] | "nobody") == "john" && source.ip == ip("1.2.3.4")'
    assert evaluate(text, attributes) is evaluate(parse(text), attributes) is True
