"""Telemetry rules: istio/istio pkg/config/validation ValidateTelemetry, the x-kubernetes-validations
of istio/api's telemetry CRD (tagOverrides), and a few checks Istio does not make (custom tags with
no source, reportingInterval, the access log filter's brackets and strings).

Nothing depends on the namespace: a Telemetry in the root namespace may have a selector, as
upstream Istio allows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from libs.config.durations import parse_duration
from libs.config.validation import scope
from libs.config.validation._checker import Checker

_MILLISECOND = Decimal("0.001")
_CLOSING = {")": "(", "]": "[", "}": "{"}
_IDENTIFIER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _providers(check: Checker, path: str, providers: list[dict[str, Any]]) -> None:
    for i, provider in enumerate(providers):
        if not provider.get("name"):
            # Istio matches the name against the mesh config's extensionProviders; "" matches none.
            check.error(f"{path}[{i}].name", "a provider name must be set")


def _custom_tag(check: Checker, path: str, tag: dict[str, Any]) -> None:
    # More than one of literal/environment/header is the schema's oneof error.
    if "literal" in tag:
        if not tag["literal"].get("value"):
            check.error(f"{path}.literal.value", "a literal tag needs a non-empty value")
    elif "environment" in tag:
        if not tag["environment"].get("name"):
            check.error(f"{path}.environment.name", "an environment tag needs the name of the variable to read")
    elif "header" in tag:
        if not tag["header"].get("name"):
            check.error(f"{path}.header.name", "a header tag needs the name of the header to read")
    else:
        # Istio accepts a tag with no source, but such a tag has no value to add to spans.
        check.error(path, "a custom tag must set one of literal, environment or header")


def _tracing(check: Checker, path: str, tracing: dict[str, Any]) -> None:
    providers = tracing.get("providers", [])
    if len(providers) > 1:
        check.warn(f"{path}.providers", "Istio supports only a single provider per tracing entry")
    _providers(check, f"{path}.providers", providers)
    if "randomSamplingPercentage" in tracing:
        percentage = tracing["randomSamplingPercentage"]
        # Written so that NaN (YAML .nan) fails too.
        if not 0 <= percentage <= 100:
            check.error(f"{path}.randomSamplingPercentage", f"randomSamplingPercentage {percentage} must be in "
                                                            "the range 0-100")
    for name, tag in tracing.get("customTags", {}).items():
        if not name:
            check.error(f"{path}.customTags", "a custom tag name must not be empty")
            continue
        _custom_tag(check, f"{path}.customTags[{name}]", tag)


def _tag_overrides(check: Checker, path: str, overrides: dict[str, dict[str, Any]]) -> None:
    for name, override in overrides.items():
        if not name:
            # Istio only warns; a tag with no name cannot become a metric label, so it is refused.
            check.error(path, "a tag name must not be empty")
            continue
        where = f"{path}[{name}]"
        operation = override.get("operation")
        if operation == "REMOVE":
            # The CRD's rule is `!has(self.value)`: an explicit empty value is refused too.
            if "value" in override:
                check.error(f"{where}.value", "value must not be set when operation is REMOVE")
        elif not override.get("value"):
            # UPSERT is the default operation, and Istio's ValidateTelemetry checks it either way.
            implicit = "" if operation else " (the default operation)"
            check.error(f"{where}.value", f"value must be set when operation is UPSERT{implicit}")


def _metrics(check: Checker, path: str, metrics: dict[str, Any]) -> None:
    _providers(check, f"{path}.providers", metrics.get("providers", []))
    for i, override in enumerate(metrics.get("overrides", [])):
        where = f"{path}.overrides[{i}]"
        # Setting both metric and customMetric is the schema's oneof error.
        match = override.get("match", {})
        if "customMetric" in match and not match["customMetric"]:
            check.error(f"{where}.match.customMetric", "customMetric must not be empty")
        _tag_overrides(check, f"{where}.tagOverrides", override.get("tagOverrides", {}))
    if "reportingInterval" in metrics:
        interval = metrics["reportingInterval"]
        if parse_duration(interval) < _MILLISECOND:
            check.error(f"{path}.reportingInterval", f"reportingInterval {interval} must be at least 1ms")


def expression_problem(expression: str) -> str | None:
    """Why `expression` cannot be a CEL expression, as far as its brackets and strings show.

    Istio parses the filter with cel-go; Mizzen has no CEL parser, so it checks only what a
    hand-written expression most often gets wrong: unbalanced (), [] and {}, and unterminated
    string literals (CEL's '...', "...", triple-quoted and raw r'...' forms).  Anything subtler
    (unknown functions, bad operators) is not caught here.
    """
    if not expression.strip():
        return "expression must not be empty"
    open_brackets: list[tuple[str, int]] = []
    i, length = 0, len(expression)
    while i < length:
        char = expression[i]
        if expression.startswith("//", i):
            # A CEL line comment: quotes and brackets in it do not count.
            newline = expression.find("\n", i)
            i = length if newline < 0 else newline + 1
            continue
        if char in "'\"":
            end = _string_end(expression, i)
            if end is None:
                return f"string starting at character {i + 1} is not terminated"
            i = end
            continue
        if char in "([{":
            open_brackets.append((char, i))
        elif char in _CLOSING:
            if not open_brackets:
                return f"{char!r} at character {i + 1} closes nothing"
            opener, at = open_brackets.pop()
            if opener != _CLOSING[char]:
                return f"{char!r} at character {i + 1} does not match {opener!r} at character {at + 1}"
        i += 1
    if open_brackets:
        opener, at = open_brackets[-1]
        return f"{opener!r} at character {at + 1} is never closed"
    return None


def _string_end(text: str, start: int) -> int | None:
    """The index just past the string literal opening at `start`, or None if it never ends."""
    quote = text[start]
    word_start = start
    while word_start > 0 and text[word_start - 1] in _IDENTIFIER:
        word_start -= 1
    # r'..', rb'..' and br'..' are raw: a backslash is an ordinary character in them.
    raw = text[word_start:start].lower() in ("r", "rb", "br")
    delimiter = quote * 3 if text.startswith(quote * 3, start) else quote
    i = start + len(delimiter)
    while i < len(text):
        if text.startswith(delimiter, i):
            return i + len(delimiter)
        if text[i] == "\\" and not raw:
            i += 2
            continue
        if text[i] == "\n" and len(delimiter) == 1:
            return None
        i += 1
    return None


def _access_logging(check: Checker, path: str, logging: dict[str, Any]) -> None:
    _providers(check, f"{path}.providers", logging.get("providers", []))
    if "filter" in logging:
        expression = logging["filter"].get("expression", "")
        if not expression.strip():
            check.error(f"{path}.filter.expression", "filter.expression must be set when filter is set")
        else:
            problem = expression_problem(expression)
            if problem:
                check.error(f"{path}.filter.expression", f"not a valid CEL expression: {problem}")


def validate(spec: dict[str, Any], check: Checker) -> None:
    scope.policy_selection(check, spec)
    tracing = spec.get("tracing", [])
    if len(tracing) > 1:
        check.warn("spec.tracing", "multiple tracing entries are not currently supported")
    for i, entry in enumerate(tracing):
        _tracing(check, f"spec.tracing[{i}]", entry)
    for i, entry in enumerate(spec.get("metrics", [])):
        _metrics(check, f"spec.metrics[{i}]", entry)
    for i, entry in enumerate(spec.get("accessLogging", [])):
        _access_logging(check, f"spec.accessLogging[{i}]", entry)
