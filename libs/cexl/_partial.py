"""Partial evaluation: what a BOOL expression can still come to when only some attributes are
known (say a destination workload's labels, long before any request).

Every attribute missing from `known` may hold any value of its type or be absent.  Each node
evaluates to an `_Outcome`: the values it may take (None: any of its type), whether it may
fail, and (where Mixer would fall through to a `|` alternative) whether it may be absent.
The answer is True when every completion of the unknown attributes evaluates to True, False
when none does (each evaluates to False or fails, and Mixer never applies a rule whose match
fails), None otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from libs.cexl._ast import Attribute, Call, Chain, Compare, Index, Literal, Node, Not
from libs.cexl._errors import EvaluationError
from libs.cexl._functions import CAN_FAIL, FUNCTIONS, addition, comparison, may_fail
from libs.cexl._types import READERS, ValueType

_MAX_VALUES = 8  # past this many possible values, a node is taken to have any value


@dataclass(frozen=True, slots=True)
class _Outcome:
    values: tuple[Any, ...] | None  # None: any value of the node's type
    fails: bool = False
    absent: bool = False


_ANY = _Outcome(None)


def _join(a: _Outcome, b: _Outcome) -> _Outcome:
    values: tuple[Any, ...] | None = None
    if a.values is not None and b.values is not None:
        merged = list(a.values)
        merged.extend(v for v in b.values if v not in merged)
        values = tuple(merged) if len(merged) <= _MAX_VALUES else None
    return _Outcome(values, a.fails or b.fails, a.absent or b.absent)


def _bools(outcome: _Outcome) -> tuple[Any, ...]:
    return (True, False) if outcome.values is None else outcome.values


def decide(root: Node, types: Mapping[Node, ValueType], known: Mapping[str, Any]) -> bool | None:
    outcome = _Partial(types, known).visit(root, maybe=False)
    if outcome.values is None:
        return None
    if True not in outcome.values:
        return False
    return True if outcome.values == (True,) and not outcome.fails else None


class _Partial:
    def __init__(self, types: Mapping[Node, ValueType], known: Mapping[str, Any]) -> None:
        self.types = types
        self.known = known

    def visit(self, node: Node, maybe: bool) -> _Outcome:
        if isinstance(node, Literal):
            return _Outcome((node.value,))
        if isinstance(node, Attribute):
            return self.attribute(node, maybe)
        if isinstance(node, Index):
            return self.index(node, maybe)
        if isinstance(node, Chain):
            return self.chain(node, maybe)
        if isinstance(node, Not):
            operand = self.visit(node.operand, maybe=False)
            return _Outcome(None if operand.values is None else tuple(not v for v in operand.values), operand.fails)
        if isinstance(node, Compare):
            test = comparison(node.op, self.types[node.left])
            operands = [self.visit(node.left, False), self.visit(node.right, False)]
            return self.apply(test, operands, may_fail(self.types[node.left]))
        return self.call(node)

    def attribute(self, node: Attribute, maybe: bool) -> _Outcome:
        if node.name not in self.known:
            return _Outcome(None, fails=not maybe, absent=maybe)
        try:
            return _Outcome((READERS[self.types[node]](node.name, self.known[node.name]),))
        except EvaluationError:
            return _Outcome((), fails=True)

    def index(self, node: Index, maybe: bool) -> _Outcome:
        target, key = self.visit(node.target, maybe), self.visit(node.key, maybe)
        fails, absent = target.fails or key.fails, target.absent or key.absent
        if target.values is None or key.values is None:
            # A key of an unknown map may be missing: "" outside `|`, absent inside one.
            return _Outcome(None, fails, absent or maybe)
        values = []
        for mapping, name in itertools.product(target.values, key.values):
            if name in mapping:
                values.append(mapping[name])
            elif maybe:
                absent = True
            else:
                values.append("")
        return _join(_Outcome(tuple(values)), _Outcome((), fails, absent))

    def chain(self, node: Chain, maybe: bool) -> _Outcome:
        if node.op in ("&&", "||"):
            return self.logical(node)
        if node.op == "+":
            add = addition(self.types[node])
            result = self.visit(node.operands[0], False)
            for operand in node.operands[1:]:
                result = self.apply(add, [result, self.visit(operand, False)], False)
            return result
        result = _Outcome(())
        for number, operand in enumerate(node.operands, 1):
            last = number == len(node.operands)
            found = self.visit(operand, maybe or not last)
            result = _join(result, _Outcome(found.values, found.fails))
            if not found.absent:
                return result
        return _Outcome(result.values, result.fails, absent=True)

    def logical(self, node: Chain) -> _Outcome:
        # `&&` goes on while its operands are True and ends False at the first False one.
        going_on = node.op == "&&"
        outcomes: set[Any] = set()
        fails = False
        for operand in node.operands:
            found = self.visit(operand, False)
            fails = fails or found.fails
            values = _bools(found)
            if (not going_on) in values:
                outcomes.add(not going_on)
            if going_on not in values:
                return _Outcome(tuple(outcomes), fails)
        outcomes.add(going_on)
        return _Outcome(tuple(outcomes), fails)

    def call(self, node: Call) -> _Outcome:
        if node.name == "conditional":
            condition = self.visit(node.args[0], False)
            result = _Outcome((), condition.fails)
            for branch, value in ((node.args[1], True), (node.args[2], False)):
                if value in _bools(condition):
                    result = _join(result, self.visit(branch, False))
            return result
        impl = FUNCTIONS[node.name].impl
        assert impl is not None
        arguments = [*([node.target] if node.target is not None else []), *node.args]
        return self.apply(impl, [self.visit(a, False) for a in arguments], node.name in CAN_FAIL)

    def apply(self, function: Callable[..., Any], arguments: list[_Outcome], can_fail: bool) -> _Outcome:
        """`function` over every combination of its arguments' possible values."""
        fails = any(a.fails for a in arguments)
        if any(a.values == () for a in arguments):
            return _Outcome((), fails)
        if any(a.values is None for a in arguments):
            return _Outcome(None, fails or can_fail)
        result = _Outcome((), fails)
        for combination in itertools.product(*(a.values or () for a in arguments)):
            try:
                result = _join(result, _Outcome((function(*combination),)))
            except EvaluationError:
                result = _join(result, _Outcome((), True))
        return result
