"""Durations, percentages and counts with Istio's bounds.

Durations reach validators normalised ("0.1s", see `libs.config.durations`) and never
negative: the schema walk already rejected those.
"""

from __future__ import annotations

from decimal import Decimal

from libs.config.durations import parse_duration
from libs.config.validation._checker import Checker

_MILLISECOND = Decimal("0.001")


def duration(check: Checker, path: str, value: str) -> None:
    """Istio's ValidateDuration: at least 1ms, in whole milliseconds (Envoy's precision)."""
    seconds = parse_duration(value)
    if seconds < _MILLISECOND:
        check.error(path, f"duration {value} must be at least 1ms")
    elif seconds % _MILLISECOND:
        check.error(path, f"duration {value}: only durations to millisecond precision are supported")


def whole_seconds(check: Checker, path: str, value: str) -> None:
    if parse_duration(value) % 1:
        check.error(path, f"duration {value} must be a whole number of seconds")


def percent(check: Checker, path: str, value: int | float) -> None:
    """An integer or plain number percentage: 0-100."""
    if not 0 <= value <= 100:
        check.error(path, f"percentage {value} must be in the range 0-100")


def fractional_percent(check: Checker, path: str, value: float) -> None:
    """A `Percent` message: 0, or 0.0001-100 (Envoy's finest fraction is one in a million)."""
    if not (value == 0 or 0.0001 <= value <= 100):
        check.error(path, f"percentage {value} must be 0 or in the range 0.0001-100")


def non_negative(check: Checker, path: str, value: int) -> None:
    if value < 0:
        check.error(path, f"{value} must not be negative")
