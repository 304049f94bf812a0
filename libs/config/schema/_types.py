"""The schema DSL: scalars, enums, lists, maps and messages keyed by JSON field name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scalar:
    """One of: string, bool, int32, uint32, int64, uint64, double, duration, bytes, any."""

    type: str


STRING = Scalar("string")
BOOL = Scalar("bool")
INT32 = Scalar("int32")
UINT32 = Scalar("uint32")
INT64 = Scalar("int64")
UINT64 = Scalar("uint64")
DOUBLE = Scalar("double")
DURATION = Scalar("duration")
BYTES = Scalar("bytes")
# google.protobuf.Struct / Value: any JSON.
ANY = Scalar("any")


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    item: SchemaType


@dataclass(frozen=True)
class MapOf:
    """A protobuf map.  JSON keys are strings; `key="uint32"` marks map<uint32, V>, whose keys
    YAML users write as bare numbers (`8080:`) and which are normalised to decimal strings."""

    value: SchemaType
    key: str = "string"


@dataclass(frozen=True)
class Ref:
    """A message named in `Message.registry`, for recursive types."""

    name: str


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Message:
    name: str
    fields: Mapping[str, SchemaType]
    # Groups of fields of which at most one may be set (protobuf oneof).
    oneofs: tuple[tuple[str, ...], ...] = ()
    aliases: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        aliases: dict[str, str] = {}
        for json_name in self.fields:
            aliases[json_name] = json_name
            aliases.setdefault(_snake(json_name), json_name)
        object.__setattr__(self, "aliases", aliases)
        # Refs resolve by name, so two different messages must not share one.
        if self.name in _REGISTRY and _REGISTRY[self.name] != self:
            raise ValueError(f"schema message {self.name!r} is defined twice")
        _REGISTRY[self.name] = self


_REGISTRY: dict[str, Message] = {}


def resolve(ref: Ref) -> Message:
    try:
        return _REGISTRY[ref.name]
    except KeyError:
        raise KeyError(f"schema message {ref.name!r} is not defined") from None


SchemaType = Scalar | Enum | ListOf | MapOf | Message | Ref
