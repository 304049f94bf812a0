"""Errors of the config model.  Each names the resource, the field path and the reason.

`FieldError` is one problem at one path; `ResourceInvalid` gathers every problem of one
resource so a user sees them all at once; `DocumentError` is a document that could not
even be read as a resource (bad YAML, not a mapping, unknown kind).
"""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(Exception):
    """Root of every config-model error."""


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    reason: str
    # A warning is reported but does not reject the resource (Istio's validation does the same).
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a document came from: a file and its document index, or another source."""

    source: str
    document: int | None = None

    def __str__(self) -> str:
        return self.source if self.document is None else f"{self.source}[{self.document}]"


class ResourceInvalid(ConfigError):
    """A resource failed validation; `errors` holds every problem found."""

    def __init__(self, kind: str, namespace: str, name: str, errors: list[FieldError],
                 origin: Origin | None = None) -> None:
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.errors = [e for e in errors if not e.warning]
        self.warnings = [e for e in errors if e.warning]
        self.origin = origin
        super().__init__(self.message())

    @property
    def resource(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def lines(self, *, with_origin: bool = False) -> list[str]:
        """One line per problem, `<Kind> <namespace>/<name>: <field>: <reason>`, each led by
        `<origin>: ` when asked and known.  The one rendering of validation errors: galley's
        API and webhook, its sources' logs and `mizzenctl validate` all print these."""
        prefix = f"{self.origin}: " if with_origin and self.origin else ""
        return [f"{prefix}{self.resource}: {error}" for error in self.errors]

    def message(self) -> str:
        return "\n".join(self.lines(with_origin=True))


class DocumentError(ConfigError):
    """A document that is not a readable resource at all."""

    def __init__(self, origin: Origin, reason: str, resource: str | None = None) -> None:
        self.origin = origin
        self.reason = reason
        self.resource = resource
        where = f"{origin}: {resource}" if resource else str(origin)
        super().__init__(f"{where}: {reason}")


class UnsupportedKind(DocumentError):
    """A well-formed resource of a kind Mizzen does not serve (yet)."""

    def __init__(self, origin: Origin, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.api_version = api_version
        self.kind = kind
        super().__init__(origin, f"unsupported kind {kind} ({api_version})", f"{kind} {namespace}/{name}")
