"""Istio's configuration API as Mizzen's config model.

`parse_text()` reads YAML safely and validates every document with Istio's rules;
`Resource` is the normalised internal form that galley writes to `mesh-config` and
pilot reads back.  Errors name the resource, the field path and the reason.
"""

from libs.config._errors import (
    ConfigError,
    DocumentError,
    FieldError,
    Origin,
    ResourceInvalid,
    UnsupportedKind,
)
from libs.config._kinds import (
    MESH_CONFIG_KIND,
    RATELIMIT_CONFIG_KIND,
    KindInfo,
    kind_by_name,
    lookup,
    supported_kinds,
)
from libs.config._loader import DEFAULT_LIMITS, LoadLimits, load_documents
from libs.config._parse import ParseResult, parse_documents, parse_resource, parse_text, warnings_of
from libs.config._resource import Resource

__all__ = [
    "DEFAULT_LIMITS",
    "MESH_CONFIG_KIND",
    "RATELIMIT_CONFIG_KIND",
    "ConfigError",
    "DocumentError",
    "FieldError",
    "KindInfo",
    "LoadLimits",
    "Origin",
    "ParseResult",
    "Resource",
    "ResourceInvalid",
    "UnsupportedKind",
    "kind_by_name",
    "load_documents",
    "lookup",
    "parse_documents",
    "parse_resource",
    "parse_text",
    "supported_kinds",
    "warnings_of",
]
