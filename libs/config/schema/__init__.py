"""Schemas of Istio's resources, written as data in a small DSL (`_types`).

A schema says which fields a message has and their types, so unknown fields are
rejected as Istio's structural schema rejects them, snake_case names are accepted and
normalised to Istio's JSON names, and semantic validators can rely on shapes.
"""

from libs.config.schema._normalise import normalise
from libs.config.schema._types import (
    ANY,
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    INT32,
    INT64,
    STRING,
    UINT32,
    UINT64,
    Enum,
    ListOf,
    MapOf,
    Message,
    Ref,
    Scalar,
    SchemaType,
)

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "INT32",
    "INT64",
    "STRING",
    "UINT32",
    "UINT64",
    "Enum",
    "ListOf",
    "MapOf",
    "Message",
    "Ref",
    "Scalar",
    "SchemaType",
    "normalise",
]
