"""Kubernetes label selectors (matchLabels, matchExpressions): the injection config's
neverInjectSelector and alwaysInjectSelector, and the mesh config's discoverySelectors.

An empty selector matches every label set, as in Kubernetes (a `discoverySelectors: [{}]`
selects every namespace); Istio's injector is the exception, and says so where it asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def parse_selector(body: Any, path: str) -> LabelSelector:
    """A LabelSelector document; SelectorError names the field (under `path`) and the reason."""
    if not isinstance(body, dict):
        raise SelectorError(path, "must be a label selector (matchLabels, matchExpressions)")
    unknown = sorted(set(body) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise SelectorError(path, f"unknown field {unknown[0]!r} (a label selector has matchLabels, "
                            "matchExpressions)")
    requirements: list[Requirement] = []
    match_labels = body.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        raise SelectorError(f"{path}.matchLabels", "must be a map of label to value")
    for key, value in match_labels.items():
        requirements.append(Requirement(str(key), "In", frozenset({str(value)})))
    expressions = body.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError(f"{path}.matchExpressions", "must be a list")
    for i, expression in enumerate(expressions):
        where = f"{path}.matchExpressions[{i}]"
        if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
            raise SelectorError(where, "must have a key")
        operator = expression.get("operator")
        if operator not in OPERATORS:
            raise SelectorError(f"{where}.operator", f"{operator!r} is not one of {', '.join(OPERATORS)}")
        values = expression.get("values") or []
        if not isinstance(values, list):
            raise SelectorError(f"{where}.values", "must be a list")
        if operator in ("In", "NotIn") and not values:
            raise SelectorError(f"{where}.values", f"{operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"{where}.values", f"{operator} takes no values")
        requirements.append(Requirement(expression["key"], operator, frozenset(str(v) for v in values)))
    return LabelSelector(tuple(requirements))
