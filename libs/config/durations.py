"""Durations as Istio accepts them, and their canonical form.

Istio reads durations with protobuf's JSON rules ("1.5s") and Go's syntax ("1h", "100ms",
"1m30s"); users write both.  Mizzen normalises every duration to protobuf's JSON form
(seconds with up to nine decimals, e.g. "0.100s" becomes "0.1s"), which is what pilot reads.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNITS = {"ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "μs": Decimal("1e-6"),
          "ms": Decimal("1e-3"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
# Protobuf's Duration holds at most 315,576,000,000 seconds (10,000 years).
MAX_SECONDS = Decimal(315_576_000_000)


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> Decimal:
    """Seconds in `text` ("1s", "100ms", "1h30m", "0.5s"); raises DurationError."""
    if not isinstance(text, str) or not text:
        raise DurationError("must be a duration string such as 1s, 100ms or 1h")
    body = text.strip()
    sign = 1
    if body.startswith("-"):
        sign, body = -1, body[1:]
    position = 0
    total = Decimal(0)
    if body == "0":
        return Decimal(0)
    while position < len(body):
        match = _PART.match(body, position)
        if not match:
            raise DurationError(f"{text!r} is not a duration (use e.g. 1s, 100ms, 1h)")
        try:
            total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise DurationError(f"{text!r} is not a duration") from exc
        position = match.end()
    if position == 0:
        raise DurationError(f"{text!r} is not a duration (use e.g. 1s, 100ms, 1h)")
    if total > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than protobuf's maximum duration")
    return sign * total


def format_duration(seconds: Decimal) -> str:
    """Protobuf JSON form: "7s", "0.5s", "0.000001s"."""
    quantised = seconds.quantize(Decimal("1e-9"))
    text = format(quantised, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}s"


def to_seconds(text: str) -> float:
    """A normalised duration as float seconds (for pilot)."""
    return float(parse_duration(text))
