"""Validation's findings as analysis messages: each error of a resource that failed
validation (IST0106), each warning of one that passed (IST0133), with the same words
`mizzenctl validate` prints.  The unreachable-rule warnings are left to the matches
analyzer, which reports them with their own codes (IST0130, IST0131), as Istio does."""

from __future__ import annotations

from collections.abc import Iterator

from libs.analysis._analyzer import Analyzer
from libs.analysis._catalog import Catalog
from libs.analysis._messages import Message, Ref, SchemaValidationError, SchemaWarning
from libs.analysis.virtual_service_rules import VALIDATION_REASONS
from libs.config import FieldError, warnings_of


def _reported_elsewhere(problem: FieldError) -> bool:
    return problem.reason.startswith(VALIDATION_REASONS)


def _schema(catalog: Catalog) -> Iterator[Message]:
    for invalid in catalog.inputs.invalid:
        ref = Ref(invalid.kind, invalid.namespace, invalid.name, str(invalid.origin) if invalid.origin else "")
        for error in invalid.errors:
            yield Message(SchemaValidationError, ref, (str(error),))
        for warning in invalid.warnings:
            if not _reported_elsewhere(warning):
                yield Message(SchemaWarning, ref, (str(warning),))
    for resource in catalog.inputs.resources:
        for warning in warnings_of(resource):
            if not _reported_elsewhere(warning):
                yield Message(SchemaWarning, catalog.ref(resource), (str(warning),))


SCHEMA = Analyzer("schema.ValidationAnalyzer", "Runs schema validation as an analyzer and reports any violations",
                  _schema)
