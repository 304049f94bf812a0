"""CEXL's value types, which operators each type supports, and the readers that check (and
normalise) an attribute's Python value against its declared type."""

from __future__ import annotations

import datetime
import enum
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from libs.cexl._errors import EvaluationError


class ValueType(enum.Enum):
    """Istio's `istio.policy.v1beta1.ValueType`, with the same numbers as the proto enum."""

    STRING = 1
    INT64 = 2
    DOUBLE = 3
    BOOL = 4
    TIMESTAMP = 5
    IP_ADDRESS = 6
    EMAIL_ADDRESS = 7
    URI = 8
    DNS_NAME = 9
    DURATION = 10
    STRING_MAP = 11


# Mixer keeps DNS names, e-mail addresses and URIs as strings; its compiler treats them as
# strings wherever it has no special case (ordering and `+`), and so does this package.
STRING_LIKE = frozenset({ValueType.STRING, ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI})
EQUATABLE = frozenset(ValueType) - {ValueType.STRING_MAP}
ORDERED = STRING_LIKE | {ValueType.INT64, ValueType.DOUBLE, ValueType.TIMESTAMP, ValueType.DURATION}
ADDABLE = STRING_LIKE | {ValueType.INT64, ValueType.DOUBLE}

Reader = Callable[[str, Any], Any]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _mismatch(name: str, expected: ValueType, value: Any) -> EvaluationError:
    return EvaluationError(f"attribute '{name}' should be {expected.name}, not {type(value).__name__}")


def _reader(expected: ValueType, python_type: type | tuple[type, ...]) -> Reader:
    def read(name: str, value: Any) -> Any:
        # bool is an int subclass: True must not pass for an INT64 or DOUBLE.
        if isinstance(value, python_type) and not (isinstance(value, bool) and expected is not ValueType.BOOL):
            return value
        raise _mismatch(name, expected, value)

    return read


def _read_double(name: str, value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise _mismatch(name, ValueType.DOUBLE, value)


def _read_timestamp(name: str, value: Any) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise _mismatch(name, ValueType.TIMESTAMP, value)
    # A naive datetime cannot be compared with an aware one; Istio's clocks are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def _read_ip(name: str, value: Any) -> IpAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    # Mixer's own attribute bags carry addresses as 4 or 16 raw bytes.
    if isinstance(value, bytes | str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            pass
    raise _mismatch(name, ValueType.IP_ADDRESS, value)


READERS: Mapping[ValueType, Reader] = {
    ValueType.STRING: _reader(ValueType.STRING, str),
    ValueType.DNS_NAME: _reader(ValueType.DNS_NAME, str),
    ValueType.EMAIL_ADDRESS: _reader(ValueType.EMAIL_ADDRESS, str),
    ValueType.URI: _reader(ValueType.URI, str),
    ValueType.INT64: _reader(ValueType.INT64, int),
    ValueType.BOOL: _reader(ValueType.BOOL, bool),
    ValueType.DURATION: _reader(ValueType.DURATION, datetime.timedelta),
    ValueType.STRING_MAP: _reader(ValueType.STRING_MAP, Mapping),
    ValueType.DOUBLE: _read_double,
    ValueType.TIMESTAMP: _read_timestamp,
    ValueType.IP_ADDRESS: _read_ip,
}
