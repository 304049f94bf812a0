"""Istio's semantic validation rules, one module per kind, sharing `common` checks.

Each `validate(spec, check)` runs after the schema walk, so fields have their declared
types; it reports problems through `check.error(path, reason)` and never raises.
"""

from libs.config.validation._checker import Checker

__all__ = ["Checker"]
