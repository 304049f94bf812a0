"""Istio's semantic validation rules, one module per kind (or per concept of a kind),
sharing concept modules: hosts, labels, ports, quantities, http, tls, scope.

Each `validate(spec, check)` runs after the schema walk, so fields have their declared
types; it reports problems through `check.error(path, reason)` (rejects the resource) or
`check.warn(path, reason)` (accepted, reported) and never raises.
"""

from libs.config.validation._checker import Checker

__all__ = ["Checker"]
