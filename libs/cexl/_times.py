"""Go's duration syntax (time.ParseDuration) and RFC 3339 timestamps (time.Parse with
time.RFC3339), the two time formats Mixer reads.

Mixer types a string literal whose text Go parses as a duration ("10ms", "1h30m", "0") as a
DURATION constant, so the exact Go grammar decides an expression's type.
"""

from __future__ import annotations

import datetime
import re
from fractions import Fraction

_NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}
_UNIT = "(?:ns|us|µs|μs|ms|s|m|h)"
# Each component needs a digit before or after its dot; Go's unit is the whole run of
# characters up to the next digit or dot, hence a component must follow a unit directly.
_DURATION = re.compile(rf"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+){_UNIT})+\Z")
_COMPONENT = re.compile(rf"([0-9]*)(?:\.([0-9]*))?({_UNIT})")
_MAX_NS = 2**63 - 1

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:Z|([-+])([0-9]{2}):([0-9]{2}))\Z")


def parse_go_duration(text: str) -> datetime.timedelta | None:
    """The duration Go's time.ParseDuration reads in `text`, or None when Go rejects it.
    Python's timedelta holds microseconds, so nanoseconds round to the nearest one."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return datetime.timedelta(0)
    if not _DURATION.match(text):
        return None
    total = 0
    for whole, fraction, unit in _COMPONENT.findall(body):
        per_unit = _NS_PER_UNIT[unit]
        total += int(whole or "0") * per_unit
        if fraction:
            total += int(Fraction(int(fraction), 10 ** len(fraction)) * per_unit)
        if total > _MAX_NS + (sign < 0):
            return None
    return datetime.timedelta(microseconds=round(Fraction(sign * total, 1000)))


def parse_rfc3339(text: str) -> datetime.datetime | None:
    """The instant `text` names in RFC 3339 form ("2015-01-02T15:04:35Z", optional fraction,
    "Z" or a ±hh:mm offset), in UTC; None when Go's time.Parse(time.RFC3339, ...) fails."""
    found = _RFC3339.match(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, offset_h, offset_m = found.groups()
    offset = datetime.timedelta(0)
    if sign:
        if int(offset_h) > 23 or int(offset_m) > 59:
            return None
        offset = datetime.timedelta(hours=int(offset_h), minutes=int(offset_m)) * (-1 if sign == "-" else 1)
    micro = int((fraction or "").ljust(6, "0")[:6])
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                                   tzinfo=datetime.timezone(offset))
    except ValueError:
        return None
    return moment.astimezone(datetime.UTC)
