"""HTTP vocabulary: header names and values, methods, status codes, regexes, string matches."""

from __future__ import annotations

import re
from typing import Any

import re2

from libs.config.validation._checker import Checker

# Istio's header-name rule for matches and JWT outputs; stricter than RFC 9110's token.
HEADER_NAME = re.compile(r"^[-_A-Za-z0-9]+$")
# Control characters other than tab end a header value early in Envoy.
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Routing on JWT claims: `@request.auth.claims.sub` or `@request.auth.claims[a][b]`.
_JWT_CLAIM = re.compile(r"^@request\.auth\.claims(\.[^.\[\]]+)+$|^@request\.auth\.claims(\[[^\[\]]+\])+$")

# Go's net/http method constants, which are what Istio accepts in CORS allowMethods.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"})
# gRPC status names (Istio's grpc.SupportedGRPCStatus).
GRPC_STATUSES = frozenset({
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
})
# Status codes that have a name (Go's http.StatusText); retryOn accepts these as numbers.
KNOWN_STATUS_CODES = frozenset({
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
    *range(400, 419), 421, 422, 423, 424, 425, 426, 428, 429, 431, 451,
    500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
})
# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies.
RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
# Envoy's RE2 is configured for programs far larger than this; Istio bounds the text instead.
MAX_REGEX_LENGTH = 1024

_RE2_OPTIONS = re2.Options()
# Report errors to the user, not to the process's stderr.
_RE2_OPTIONS.log_errors = False


def is_jwt_claim_key(name: str) -> bool:
    return _JWT_CLAIM.match(name) is not None


def header_name(check: Checker, path: str, name: str) -> None:
    if not name:
        check.error(path, "header name cannot be empty")
    elif not HEADER_NAME.match(name):
        check.error(path, f"header name {name!r} is not a valid header name (letters, digits, '-' and '_')")


def header_value_problem(value: str) -> str | None:
    """Envoy's header value syntax (its header_parser, as Istio ports it): `%%` is a literal
    `%`; any other `%` opens `%VAR%` or `%VAR(args)%`, whose args are a bare string or a
    JSON array of strings, and which must be closed."""
    if _HEADER_VALUE_BAD.search(value):
        return f"header value {value!r} contains control characters"
    state = "literal"
    i = 0
    while i < len(value):
        ch = value[i]
        if state == "literal":
            if ch == "%":
                if value.startswith("%%", i):
                    i += 1
                else:
                    state = "name"
        elif state == "name":
            state = {"%": "literal", "(": "args"}.get(ch, "name")
        elif state == "args":
            state = "element" if ch == "[" else ("args" if ch == " " else "string")
        elif state == "element":
            if ch not in ' "':
                return f"header value {value!r}: expected '\"' in the argument list"
            state = "string" if ch == '"' else "element"
        elif state == "string":
            if ch == "\\":
                i += 1
            else:
                state = {")": "close", '"': "delimiter"}.get(ch, "string")
        elif state == "delimiter":
            if ch not in " ,]":
                return f"header value {value!r}: expected ',' or ']' in the argument list"
            state = {",": "element", "]": "args-end"}.get(ch, "delimiter")
        else:
            # "args-end" waits for the `)` after `]`, "close" for the `%` after `)`.
            expected = ")" if state == "args-end" else "%"
            if ch == expected:
                state = "close" if expected == ")" else "literal"
            elif ch != " ":
                return f"header value {value!r}: expected {expected!r} to close a %VAR(...)% expression"
        i += 1
    if state != "literal":
        return f"header value {value!r}: unterminated %VAR% expression (write '%%' for a literal '%')"
    return None


def regex(check: Checker, path: str, pattern: str) -> None:
    """Compile with RE2, the engine Envoy uses, and report its own error."""
    if not pattern:
        check.error(path, "regex must not be empty")
        return
    if len(pattern) > MAX_REGEX_LENGTH:
        check.error(path, f"regex is too large (max length allowed is {MAX_REGEX_LENGTH})")
        return
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        check.error(path, f"invalid RE2 regex {pattern!r}: {reason}")


def string_match(check: Checker, path: str, match: dict[str, Any]) -> None:
    """A StringMatch: exactly one of exact/prefix/regex (the schema forbids more than one)."""
    if not match:
        # Istio accepts `{}` and Envoy then matches anything; almost always a mistake.
        check.warn(path, "empty string match matches everything; set exact, prefix or regex")
    elif "regex" in match:
        regex(check, f"{path}.regex", match["regex"])


def http_status(check: Checker, path: str, status: int) -> None:
    if not 200 <= status <= 599:
        check.error(path, f"HTTP status {status} is not in the range 200-599")


def retry_on(check: Checker, path: str, value: str) -> None:
    for policy in value.split(","):
        if policy in RETRY_ON:
            continue
        if policy.isascii() and policy.isdigit() and int(policy) in KNOWN_STATUS_CODES:
            continue
        check.error(path, f"{policy!r} is not a valid retryOn policy (Envoy's retry-on conditions or an HTTP "
                          "status code, comma-separated without spaces)")
