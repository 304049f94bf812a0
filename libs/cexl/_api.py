"""The public entry points: parsing (cached by text), type checking and evaluation (cached
per expression and vocabulary), and partial evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.cexl._ast import Node, references
from libs.cexl._checker import check_tree
from libs.cexl._errors import CexlError, EvaluationError
from libs.cexl._evaluator import compile_tree
from libs.cexl._parser import parse_tree
from libs.cexl._partial import decide
from libs.cexl._types import ValueType
from libs.cexl._vocabulary import VOCABULARY, FrozenVocabulary, freeze


@dataclass(frozen=True)
class Expression:
    """A parsed expression; equal when their texts are.  Constructing one parses `text` and
    raises CexlError on a syntax error (types are checked against a vocabulary later)."""

    text: str
    _root: Node = field(init=False, repr=False, compare=False)
    _references: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"an expression is a str, not {type(self.text).__name__}")
        root = parse_tree(self.text)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_references", frozenset(references(root)))

    def referenced(self) -> frozenset[str]:
        """Every attribute an evaluation may read, whatever the attributes' values:
        `source.ip` for an attribute; `request.headers["x-user"]` for one key of a map
        attribute (a CEXL expression reading that key, the key written as a JSON string;
        reading it also reads whether the map is present); a map attribute's bare name when
        the map is read whole (as a value, or with a key computed at run time)."""
        return self._references


@dataclass(frozen=True, slots=True)
class _Program:
    type: ValueType
    types: Mapping[Node, ValueType]
    run: Callable[[Mapping[str, Any]], Any]


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Expression:
    return Expression(text)


@functools.lru_cache(maxsize=4096)
def _program(expression: Expression, vocabulary: FrozenVocabulary) -> _Program:
    value_type, types = check_tree(expression._root, vocabulary)
    return _Program(value_type, types, compile_tree(expression._root, types))


def _compiled(expression: str | Expression, vocabulary: Mapping[str, ValueType]) -> _Program:
    parsed = expression if isinstance(expression, Expression) else _parse(expression)
    return _program(parsed, freeze(vocabulary))


def parse(text: str) -> Expression:
    """The parsed expression; raises CexlError on a syntax error."""
    return _parse(text)


def check(expression: str | Expression, vocabulary: Mapping[str, ValueType] = VOCABULARY) -> ValueType:
    """The expression's type under `vocabulary`; raises CexlError naming the position and
    the problem (a syntax error, an unknown attribute or function, mismatched types, ...)."""
    return _compiled(expression, vocabulary).type


def evaluate(expression: str | Expression, attributes: Mapping[str, Any],
             vocabulary: Mapping[str, ValueType] = VOCABULARY) -> Any:
    """The expression's value on one request's `attributes` (a Mapping from attribute name to
    Python value).  Raises CexlError if the expression does not parse or type-check, and
    EvaluationError when this evaluation fails (a needed attribute absent, a conversion
    failing, a value not of its attribute's type).  A vocabulary other than VOCABULARY is
    copied into a hashable form on every call: cheap, but not free."""
    program = _compiled(expression, vocabulary)
    try:
        return program.run(attributes)
    except (TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, CexlError):
            raise
        # Only values of the wrong type get here (a map holding a non-string, say).
        raise EvaluationError(f"evaluating '{_text(expression)}': {exc}") from exc


def partial(expression: str | Expression, known: Mapping[str, Any],
            vocabulary: Mapping[str, ValueType] = VOCABULARY) -> bool | None:
    """For a BOOL expression: True when it evaluates to True whatever the attributes missing
    from `known` are (any value, or absent), False when it cannot evaluate to True (it is
    False or fails, and Mixer applies no rule whose match fails), None when that depends on
    attributes not in `known`.  A map attribute in `known` is known whole."""
    program = _compiled(expression, vocabulary)
    if program.type is not ValueType.BOOL:
        raise CexlError(-1, f"partial() needs a BOOL expression, not {program.type.name}")
    parsed = expression if isinstance(expression, Expression) else _parse(expression)
    return decide(parsed._root, program.types, known)


def _text(expression: str | Expression) -> str:
    return expression.text if isinstance(expression, Expression) else expression
