"""Reading hostile input: every limit fails fast, with a clear reason, for the whole input."""

from __future__ import annotations

import pytest

from libs.config import DEFAULT_LIMITS, DocumentError, LoadLimits, load_documents, parse_text

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def reason_of(data: bytes | str, limits: LoadLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(DocumentError) as caught:
        load_documents(data, "input.yaml", limits)
    return caught.value.reason


def test_alias_bomb_is_refused_before_expanding() -> None:
    assert "expands to more than" in reason_of(BILLION_LAUGHS)


def test_a_few_aliases_are_fine() -> None:
    documents = load_documents("base: &b {x: 1}\ncopy: *b\n", "input.yaml")
    assert documents[0].body == {"base": {"x": 1}, "copy": {"x": 1}}


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_nesting_is_refused_without_recursing(opener: str) -> None:
    # 100k levels would crash libyaml's recursive composer; the event pass stops at 64.
    assert "nesting deeper than 64 levels" in reason_of(opener * 100_000)


def test_nesting_is_named_whatever_the_parser_says() -> None:
    # libyaml may refuse the text itself (PyYAML 6.0.4 has its own flow-nesting limit);
    # the reason is Mizzen's either way, and brackets in quotes or comments do not count.
    assert "nesting deeper than 64 levels" in reason_of("a: " + "[" * 1500 + "1" + "]" * 1500)
    unclosed = reason_of('a: &x "' + "[" * 3000 + '" # ' + "{" * 100 + "\nb: [1")
    assert unclosed.startswith("invalid YAML") and "nesting" not in unclosed


def test_nesting_within_the_limit_loads() -> None:
    assert load_documents("[" * 60 + "]" * 60, "input.yaml")


def test_ten_megabytes_are_over_the_size_limit() -> None:
    data = b"a: " + b"x" * (10 * 1024 * 1024) + b"\n"
    assert "byte limit" in reason_of(data)
    assert "byte limit" in reason_of(data.decode())


def test_binary_garbage_is_not_yaml() -> None:
    assert "binary data" in reason_of(bytes(range(256)) * 4)


def test_non_utf8_is_named() -> None:
    reason = reason_of("name: caf\u00e9\n".encode("latin-1"))
    assert reason.startswith("not UTF-8 text") and "at byte 9" in reason


def test_utf8_bom_is_accepted() -> None:
    assert load_documents(b"\xef\xbb\xbfa: 1\n", "input.yaml")[0].body == {"a": 1}


def test_invalid_yaml_names_the_line() -> None:
    reason = reason_of("a: [1, 2\nb: 3\n")
    assert reason.startswith("invalid YAML") and "line" in reason


def test_unknown_alias() -> None:
    # Without anchors libyaml itself reports it; with anchors, the event check does.
    assert "undefined alias" in reason_of("a: *nope\n")
    assert "unknown alias *nope" in reason_of("a: &x 1\nb: *nope\n")


def test_too_many_documents() -> None:
    assert "more than 3 documents" in reason_of("---\na: 1\n" * 5, LoadLimits(max_documents=3))


def test_timestamps_stay_strings() -> None:
    assert load_documents("at: 2024-01-01T00:00:00Z\n", "input.yaml")[0].body == {"at": "2024-01-01T00:00:00Z"}


def test_empty_documents_are_skipped() -> None:
    documents = load_documents("---\n---\na: 1\n---\n", "input.yaml")
    assert [d.body for d in documents] == [{"a": 1}]
    assert documents[0].origin.document == 1


def test_parse_text_reports_unreadable_input_whole() -> None:
    result = parse_text(BILLION_LAUGHS, "bomb.yaml")
    assert not result.ok and not result.resources
    assert result.errors()[0].startswith("bomb.yaml[0]: document expands to more than")
