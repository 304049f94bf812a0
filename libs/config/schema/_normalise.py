"""Walk a value against a schema: check types, reject unknown fields, normalise names.

Returns the normalised value (JSON names, canonical durations, enum names) and appends
one `FieldError` per problem, so every problem of a resource is reported at once.
"""

from __future__ import annotations

from typing import Any

from libs.config._errors import FieldError
from libs.config.durations import DurationError, format_duration, parse_duration
from libs.config.schema._types import Enum, ListOf, MapOf, Message, Ref, Scalar, SchemaType, resolve

_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def normalise(value: Any, schema: SchemaType, path: str, errors: list[FieldError]) -> Any:
    if isinstance(schema, Ref):
        schema = resolve(schema)
    if isinstance(schema, Message):
        return _message(value, schema, path, errors)
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            errors.append(FieldError(path, f"must be a list, not {_type_name(value)}"))
            return []
        return [normalise(item, schema.item, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            errors.append(FieldError(path, f"must be a map, not {_type_name(value)}"))
            return {}
        out = {}
        for key, item in value.items():
            name = _map_key(key, schema, path, errors)
            if name is not None:
                out[name] = normalise(item, schema.value, f"{path}[{name}]", errors)
        return out
    if isinstance(schema, Enum):
        return _enum(value, schema, path, errors)
    return _scalar(value, schema, path, errors)


def _map_key(key: Any, schema: MapOf, path: str, errors: list[FieldError]) -> str | None:
    if schema.key == "uint32":
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str) or not key.isdigit() or not key.isascii() or int(key) > 2**32 - 1:
            errors.append(FieldError(path, f"map key {key!r} must be a non-negative integer"))
            return None
        return str(int(key))
    if not isinstance(key, str):
        errors.append(FieldError(path, f"map key {key!r} must be a string"))
        return None
    return key


def _message(value: Any, schema: Message, path: str, errors: list[FieldError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be an object, not {_type_name(value)}"))
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldError(path, f"field name {key!r} must be a string"))
            continue
        json_name = schema.aliases.get(key)
        child = f"{path}.{key}" if path else key
        if json_name is None:
            errors.append(FieldError(child, f"unknown field in {schema.name}"))
            continue
        if item is None:
            # JSON null means "unset" for protobuf; drop it like Istio does.
            continue
        if json_name in out:
            errors.append(FieldError(child, f"set twice (as {json_name} and its snake_case alias)"))
            continue
        out[json_name] = normalise(item, schema.fields[json_name], f"{path}.{json_name}" if path else json_name,
                                   errors)
    for group in schema.oneofs:
        present = [name for name in group if name in out]
        if len(present) > 1:
            errors.append(FieldError(path, f"only one of {', '.join(group)} may be set (found {', '.join(present)})"))
    return out


def _enum(value: Any, schema: Enum, path: str, errors: list[FieldError]) -> str:
    if isinstance(value, bool):
        errors.append(FieldError(path, f"must be one of {', '.join(schema.values)}"))
        return schema.values[0]
    if isinstance(value, int):
        if 0 <= value < len(schema.values):
            return schema.values[value]
        errors.append(FieldError(path, f"{value} is not a {schema.name} value"))
        return schema.values[0]
    if isinstance(value, str) and value in schema.values:
        return value
    errors.append(FieldError(path, f"{value!r} is not one of {', '.join(schema.values)}"))
    return schema.values[0]


def _scalar(value: Any, schema: Scalar, path: str, errors: list[FieldError]) -> Any:
    kind = schema.type
    if kind == "any":
        return value
    if kind == "string":
        if isinstance(value, str):
            return value
        errors.append(FieldError(path, f"must be a string, not {_type_name(value)}"))
        return ""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        errors.append(FieldError(path, f"must be true or false, not {_type_name(value)}"))
        return False
    if kind in _INT_RANGES:
        number = value
        if isinstance(value, str) and kind in ("int64", "uint64"):
            try:
                number = int(value)
            except ValueError:
                number = value
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            errors.append(FieldError(path, f"must be an integer, not {_type_name(value)}"))
            return 0
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            errors.append(FieldError(path, f"{number} is out of range for {kind}"))
        return number
    if kind == "double":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        errors.append(FieldError(path, f"must be a number, not {_type_name(value)}"))
        return 0.0
    if kind == "duration":
        if not isinstance(value, str):
            errors.append(FieldError(path, f"must be a duration string such as 1s or 100ms, not {_type_name(value)}"))
            return "0s"
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            errors.append(FieldError(path, str(exc)))
            return "0s"
        if seconds < 0:
            errors.append(FieldError(path, f"duration {value} must not be negative"))
        return format_duration(seconds)
    if kind == "bytes":
        if isinstance(value, str):
            return value
        errors.append(FieldError(path, f"must be a base64 string, not {_type_name(value)}"))
        return ""
    raise AssertionError(f"unknown scalar type {kind}")  # pragma: no cover
