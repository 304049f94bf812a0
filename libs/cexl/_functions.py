"""CEXL's functions (Mixer's externs and intrinsics) with their signatures, and the
operator implementations for each operand type.

The set and signatures are Istio's: mixer/pkg/lang/externs.go (ip, timestamp, dnsName,
email, uri, match, the methods matches/startsWith/endsWith, emptyStringMap,
conditionalString, toLower) and the intrinsics in mixer/pkg/lang/ast/func.go
(conditional, size).  Note that `matches` is called on the pattern:
`"svc.*".matches(destination.service)`.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

from libs.cexl._errors import EvaluationError
from libs.cexl._netnames import dns_equal, dns_name, email, email_equal, ip_equal, to_ip, uri, uri_equal
from libs.cexl._times import parse_rfc3339
from libs.cexl._types import ValueType

_S, _B = ValueType.STRING, ValueType.BOOL

_RE2_OPTIONS = re2.Options()
# A bad pattern is reported to the caller; RE2 would also log it to the process's stderr.
_RE2_OPTIONS.log_errors = False

_EMPTY_MAP: types.MappingProxyType[str, str] = types.MappingProxyType({})
_INT64_SPAN = 2**64
_INT64_MIN = -(2**63)


@functools.lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Any:
    """The compiled RE2 pattern; raises EvaluationError with RE2's reason."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise EvaluationError(f"invalid RE2 regex {pattern!r}: {reason}") from None


def glob_match(text: str, pattern: str) -> bool:
    """Mixer's match(): a trailing `*` matches a prefix, else a leading one a suffix."""
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return text.endswith(pattern[1:])
    return text == pattern


def regex_matches(pattern: str, text: str) -> bool:
    # Go's regexp.MatchString: unanchored, RE2 syntax.
    return compile_regex(pattern).search(text) is not None


def to_timestamp(text: str) -> Any:
    moment = parse_rfc3339(text)
    if moment is None:
        raise EvaluationError(f"could not convert '{text}' to TIMESTAMP. expected format: '2006-01-02T15:04:05Z07:00'")
    return moment


def size(text: str) -> int:
    # Go's len(): bytes of UTF-8, not characters.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def conditional_string(condition: bool, when_true: str, when_false: str) -> str:
    return when_true if condition else when_false


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[ValueType | None, ...]  # None: one type shared by every None parameter
    returns: ValueType | None  # None: that shared type
    impl: Callable[..., Any] | None  # None: compiled specially (conditional evaluates one branch)
    method: bool = False  # called as target.name(params); the target is a STRING
    converts: bool = False  # a conversion whose literal argument the checker validates


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("match", (_S, _S), _B, glob_match),
    Function("matches", (_S,), _B, regex_matches, method=True),
    Function("startsWith", (_S,), _B, str.startswith, method=True),
    Function("endsWith", (_S,), _B, str.endswith, method=True),
    Function("ip", (_S,), ValueType.IP_ADDRESS, to_ip, converts=True),
    Function("timestamp", (_S,), ValueType.TIMESTAMP, to_timestamp, converts=True),
    Function("dnsName", (_S,), ValueType.DNS_NAME, dns_name, converts=True),
    Function("email", (_S,), ValueType.EMAIL_ADDRESS, email, converts=True),
    Function("uri", (_S,), ValueType.URI, uri, converts=True),
    Function("emptyStringMap", (), ValueType.STRING_MAP, lambda: _EMPTY_MAP),
    Function("conditional", (_B, None, None), None, None),
    Function("conditionalString", (_B, _S, _S), _S, conditional_string),
    Function("toLower", (_S,), _S, str.lower),
    Function("size", (_S,), ValueType.INT64, size),
)}

# Whether a function can fail on arguments of the right type (partial evaluation must then
# allow for an error whenever an argument is unknown).
CAN_FAIL = frozenset({"matches", "ip", "timestamp", "dnsName", "email", "uri"})

_EQUALITY: dict[ValueType, Callable[[Any, Any], bool]] = {
    ValueType.IP_ADDRESS: ip_equal,
    ValueType.DNS_NAME: dns_equal,
    ValueType.EMAIL_ADDRESS: email_equal,
    ValueType.URI: uri_equal,
}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def comparison(op: str, value_type: ValueType) -> Callable[[Any, Any], bool]:
    """The function for `left op right` on two values of `value_type`."""
    if op in _ORDER:
        return _ORDER[op]
    equal = _EQUALITY.get(value_type, operator.eq)
    if op == "==":
        return equal
    if equal is operator.eq:
        return operator.ne
    return lambda a, b: not equal(a, b)


def _add_int64(a: int, b: int) -> int:
    # INT64 arithmetic wraps around, as Go's does.
    return (a + b - _INT64_MIN) % _INT64_SPAN + _INT64_MIN


def addition(value_type: ValueType) -> Callable[[Any, Any], Any]:
    return _add_int64 if value_type is ValueType.INT64 else operator.add


def may_fail(value_type: ValueType) -> bool:
    """Whether comparing two values of `value_type` can raise (unparsable e-mails, URIs)."""
    return value_type in (ValueType.EMAIL_ADDRESS, ValueType.URI)
