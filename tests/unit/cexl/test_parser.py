"""Parsing: Go's precedence and associativity, literals as Go reads them, errors with the
offset of the token at fault, and bounded nesting."""

from __future__ import annotations

import datetime
import pickle

import pytest

from libs.cexl import CexlError, Expression, ValueType, parse
from tests.unit.cexl.support import render

PRECEDENCE = [
    ("a || b && c", "(|| a (&& b c))"),
    ("a && b || c", "(|| (&& a b) c)"),
    ("a || b || c || d", "(|| a b c d)"),
    ("a && b && c", "(&& a b c)"),
    ("(a || b) && c", "(&& (|| a b) c)"),
    ("a == b && c != d", "(&& (== a b) (!= c d))"),
    ("a < b || c >= d", "(|| (< a b) (>= c d))"),
    # `|` and `+` are Go's level 4: tighter than comparisons, equal to each other.
    ("a | b == c", "(== (| a b) c)"),
    ("a == b | c", "(== a (| b c))"),
    ("a | b | c", "(| a b c)"),
    ("a + b | c", "(| (+ a b) c)"),
    ("a | b + c", "(+ (| a b) c)"),
    ("a + b + c", "(+ a b c)"),
    ("a + (b + c)", "(+ a (+ b c))"),
    ("a && b | c", "(&& a (| b c))"),
    ("a < b == c", "(== (< a b) c)"),
    ("!a == b", "(== (! a) b)"),
    ("!a && !b", "(&& (! a) (! b))"),
    ("!!a", "(! (! a))"),
    ("m[\"k\"] | \"x\"", "(| ([] m 'k') 'x')"),
    ("m[k][j]", "([] ([] m k) j)"),
    ("request.headers[\"x\"] == \"y\"", "(== ([] request.headers 'x') 'y')"),
    ("f()", "(call f)"),
    ("f(a, b,)", "(call f a b)"),
    ("a.b.c(x)", "(call a.b.c x)"),
    ("request.path.startsWith(\"/api\")", "(call request.path.startsWith '/api')"),
    ("\"svc.*\".matches(destination.service)", "(call 'svc.*'.matches destination.service)"),
    ("(a | b).startsWith(c)", "(call (| a b).startsWith c)"),
    ("m[\"k\"].endsWith(c)", "(call ([] m 'k').endsWith c)"),
    ("f(x).g(y)", "(call (call f x).g y)"),
    ("a /* comment */ == // to the end of the line\n b", "(== a b)"),
    ("conditional(a, \"x\", \"y\") + \"z\"", "(+ (call conditional a 'x' 'y') 'z')"),
]


@pytest.mark.parametrize(("text", "tree"), PRECEDENCE)
def test_precedence_and_grouping(text: str, tree: str) -> None:
    assert render(parse(text)) == tree


LITERALS = [
    ('"abc"', "abc", ValueType.STRING),
    (r'"a\tb\n\"c\"\\"', 'a\tb\n"c"\\', ValueType.STRING),
    (r'"\x41\101\u00e9\U0001F600"', "AAé😀", ValueType.STRING),
    (r'"\xc3\xa9"', "é", ValueType.STRING),  # byte escapes spell UTF-8
    ("`raw\\n\"text\"`", 'raw\\n"text"', ValueType.STRING),
    ("`two\r\nlines`", "two\nlines", ValueType.STRING),
    ("'x'", "x", ValueType.STRING),
    (r"'\''", "'", ValueType.STRING),
    (r"'\xff'", "ÿ", ValueType.STRING),
    ('""', "", ValueType.STRING),
    ("17", 17, ValueType.INT64),
    ("017", 17, ValueType.INT64),  # Go scans it as octal, Mixer reads the digits as decimal
    ("9223372036854775807", 2**63 - 1, ValueType.INT64),
    ("1.5", 1.5, ValueType.DOUBLE),
    (".5", 0.5, ValueType.DOUBLE),
    ("1.", 1.0, ValueType.DOUBLE),
    ("1e3", 1000.0, ValueType.DOUBLE),
    ("2.5E-1", 0.25, ValueType.DOUBLE),
    ("true", True, ValueType.BOOL),
    ("FALSE", False, ValueType.BOOL),
    ("True", True, ValueType.BOOL),
    # A string Go's time.ParseDuration reads is a DURATION.
    ('"10ms"', datetime.timedelta(milliseconds=10), ValueType.DURATION),
    ('"1h30m"', datetime.timedelta(minutes=90), ValueType.DURATION),
    ('"1.5h"', datetime.timedelta(minutes=90), ValueType.DURATION),
    ('"-2s"', datetime.timedelta(seconds=-2), ValueType.DURATION),
    ('"0"', datetime.timedelta(0), ValueType.DURATION),
    ('"1500us"', datetime.timedelta(microseconds=1500), ValueType.DURATION),
    ('"2µs"', datetime.timedelta(microseconds=2), ValueType.DURATION),
    ('"1h1m1s1ms1us1ns"', datetime.timedelta(hours=1, minutes=1, seconds=1, milliseconds=1, microseconds=1),
     ValueType.DURATION),
    ('"1"', "1", ValueType.STRING),
    ('"ms"', "ms", ValueType.STRING),
    ('"1hx"', "1hx", ValueType.STRING),
    ('"1 s"', "1 s", ValueType.STRING),
    ('"."', ".", ValueType.STRING),
    ('"3000000h"', "3000000h", ValueType.STRING),  # past Go's 292 years
]


@pytest.mark.parametrize(("text", "value", "value_type"), LITERALS)
def test_literals(text: str, value: object, value_type: ValueType) -> None:
    root = parse(text)._root
    assert (root.value, root.type) == (value, value_type)  # type: ignore[union-attr]


ERRORS = [
    ("", -1, "empty expression"),
    ("   ", -1, "empty expression"),
    ("a = 2", 2, "unexpected '=' (compare with '==')"),
    ("a == ", 5, "unexpected end of expression"),
    ("a b", 2, "unexpected identifier `b`"),
    ("@23", 0, "illegal character U+0040 '@'"),
    ("a == #", 5, "illegal character"),
    ("(a", 2, "expected ')', found end of expression"),
    ("a)", 1, "unexpected ')'"),
    ("f(a,,b)", 4, "unexpected ','"),
    ("f(a b)", 4, "expected ')', found identifier `b`"),
    ("m[\"k\"", 5, "expected ']'"),
    ("m[1:2]", 3, "expected ']', found ':'"),
    ("x - y", 2, "operator '-' is not supported"),
    ("(x/y) == 30", 2, "operator '/' is not supported"),
    ("x * 2", 2, "operator '*' is not supported"),
    ("a & b", 2, "operator '&' is not supported"),
    ("-1", 0, "unary operator '-' is not supported"),
    ("+abc", 0, "unary operator '+' is not supported"),
    ("a == -1", 5, "unary operator '-'"),
    ("(a).b", 4, "`.b` on an expression must be a method call"),
    ("f(x).g", 5, "`.g` on an expression must be a method call"),
    ("a.(b)", 2, "expected a method name"),
    ("f(x)(y)", 4, "only a function or method name can be called"),
    ("\"abc", 0, "string literal not terminated"),
    ("\"a\nb\"", 0, "string literal not terminated"),
    ("`abc", 0, "raw string literal not terminated"),
    ("'ab'", 0, "more than one character in rune literal"),
    ("''", 0, "empty rune literal"),
    (r'"\q"', 1, "unknown escape sequence"),
    (r'"\x4"', 1, "invalid escape sequence"),
    (r'"\400"', 1, "octal escape value > 255"),
    (r'"\ud800"', 1, "not a valid Unicode code point"),
    (r"'\"'", 1, "unknown escape sequence"),
    (r'"\xff"', 0, "not valid UTF-8"),
    ("0x1F", 0, "only decimal number literals"),
    ("1_000", 0, "invalid number literal"),
    ("1i", 0, "invalid number literal"),
    ("08", 0, "invalid digit in octal literal"),
    ("9223372036854775808", 0, "does not fit in INT64"),
    ("1e999", 0, "out of range"),
    ("1e", 0, "exponent has no digits"),
    ("a /* open", 2, "comment not terminated"),
]


@pytest.mark.parametrize(("text", "position", "reason"), ERRORS)
def test_syntax_errors_name_the_position(text: str, position: int, reason: str) -> None:
    with pytest.raises(CexlError) as caught:
        parse(text)
    assert caught.value.position == position
    assert reason in caught.value.reason
    assert str(caught.value) == f"position {position}: {caught.value.reason}"


@pytest.mark.parametrize("text", [
    "(" * 10_000 + "a" + ")" * 10_000,
    "!" * 10_000 + "a",
    "f(" * 10_000 + ")" * 10_000,
    "m[" * 10_000 + "k" + "]" * 10_000,
    " == ".join(["true"] * 10_000),
])
def test_hostile_nesting_is_a_cexl_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(CexlError, match="nested more than"):
        parse(text)


def test_long_flat_chains_parse() -> None:
    # Runs of one associative operator become one node: long rules do not nest.
    for op in ("||", "&&", "|", "+"):
        assert render(parse(f" {op} ".join(["a"] * 10_000))).count("a") == 10_000


def test_parse_is_cached_and_expressions_compare_by_text() -> None:
    assert parse("a == b") is parse("a == b")
    assert Expression("a == b") == parse("a == b")
    assert hash(Expression("a == b")) == hash(parse("a == b"))
    assert repr(parse("a")) == "Expression(text='a')"
    with pytest.raises(TypeError):
        Expression(42)  # type: ignore[arg-type]


def test_errors_pickle() -> None:
    error = pickle.loads(pickle.dumps(CexlError(3, "bad")))
    assert (error.position, error.reason, str(error)) == (3, "bad", "position 3: bad")
    assert isinstance(error, ValueError)
    copied = pickle.loads(pickle.dumps(parse("a | b")))
    assert copied == parse("a | b") and render(copied) == "(| a b)"
