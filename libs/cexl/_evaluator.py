"""The compiler from a type-checked tree to nested Python closures, run once per request.

Absence follows Mixer's compiler (mixer/pkg/lang/compiler): only an attribute read, a map
lookup and a `|` can come out absent, and only as a left operand of `|` (or inside one) does
absence mean "try the next alternative".  Elsewhere an absent attribute fails the evaluation,
while a key missing from a present map reads as "" (Mixer's NLOOKUP).  Calls, constants and
operators always yield a value or fail, so `ip(a) | ip(b)` fails when a is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from libs.cexl._ast import Attribute, Call, Chain, Compare, Index, Literal, Node, Not
from libs.cexl._errors import EvaluationError
from libs.cexl._functions import FUNCTIONS, addition, comparison, compile_regex
from libs.cexl._types import READERS, ValueType

Program = Callable[[Mapping[str, Any]], Any]
ABSENT: Any = object()  # what a `maybe` program returns for an absent attribute or key


def compile_tree(root: Node, types: Mapping[Node, ValueType]) -> Program:
    return _Compiler(types).value(root)


def _constant(value: Any) -> Program:
    return lambda attributes: value


def _logical(op: str, operands: list[Program]) -> Program:
    """`&&` or `||` over BOOL programs, stopping at the first operand that decides."""
    if len(operands) == 2:
        first, second = operands
        if op == "&&":
            return lambda attributes: first(attributes) and second(attributes)
        return lambda attributes: first(attributes) or second(attributes)
    deciding = op == "||"

    def run(attributes: Mapping[str, Any]) -> bool:
        for operand in operands:
            if operand(attributes) == deciding:
                return deciding
        return not deciding

    return run


class _Compiler:
    def __init__(self, types: Mapping[Node, ValueType]) -> None:
        self.types = types

    def value(self, node: Node) -> Program:
        """A program that returns the node's value, and fails where it is absent."""
        if isinstance(node, Literal):
            return _constant(node.value)
        if isinstance(node, Attribute):
            return self.attribute(node, maybe=False)
        if isinstance(node, Index):
            return self.index(node, maybe=False)
        if isinstance(node, Chain):
            return self.chain(node, maybe=False)
        if isinstance(node, Not):
            operand = self.value(node.operand)
            return lambda attributes: not operand(attributes)
        if isinstance(node, Compare):
            return self.compare(node)
        return self.call(node)

    def maybe(self, node: Node) -> Program:
        """A program that returns ABSENT where the node is absent."""
        if isinstance(node, Attribute):
            return self.attribute(node, maybe=True)
        if isinstance(node, Index):
            return self.index(node, maybe=True)
        if isinstance(node, Chain) and node.op == "|":
            return self.chain(node, maybe=True)
        return self.value(node)

    def attribute(self, node: Attribute, maybe: bool) -> Program:
        name, read = node.name, READERS[self.types[node]]

        # `in` before `[]` lets a recording Mapping note absent attributes too.
        def present(attributes: Mapping[str, Any]) -> Any:
            if name in attributes:
                return read(name, attributes[name])
            raise EvaluationError(f"lookup failed: '{name}'")

        def optional(attributes: Mapping[str, Any]) -> Any:
            return read(name, attributes[name]) if name in attributes else ABSENT

        return optional if maybe else present

    def index(self, node: Index, maybe: bool) -> Program:
        target = self.maybe(node.target) if maybe else self.value(node.target)
        missing = ABSENT if maybe else ""
        if isinstance(node.key, Literal):
            key = node.key.value

            def constant_key(attributes: Mapping[str, Any]) -> Any:
                found = target(attributes)
                return ABSENT if found is ABSENT else found.get(key, missing)

            return constant_key
        lookup = self.maybe(node.key) if maybe else self.value(node.key)

        def variable_key(attributes: Mapping[str, Any]) -> Any:
            found = target(attributes)
            if found is ABSENT:
                return ABSENT
            name = lookup(attributes)
            return ABSENT if name is ABSENT else found.get(name, missing)

        return variable_key

    def chain(self, node: Chain, maybe: bool) -> Program:
        if node.op == "|":
            alternatives = [self.maybe(o) for o in node.operands[:-1]]
            last = self.maybe(node.operands[-1]) if maybe else self.value(node.operands[-1])

            def first_present(attributes: Mapping[str, Any]) -> Any:
                for alternative in alternatives:
                    found = alternative(attributes)
                    if found is not ABSENT:
                        return found
                return last(attributes)

            return first_present
        operands = [self.value(o) for o in node.operands]
        if node.op in ("&&", "||"):
            return _logical(node.op, operands)
        add, head, rest = addition(self.types[node]), operands[0], operands[1:]

        def total(attributes: Mapping[str, Any]) -> Any:
            result = head(attributes)
            for operand in rest:
                result = add(result, operand(attributes))
            return result

        return total

    def compare(self, node: Compare) -> Program:
        test = comparison(node.op, self.types[node.left])
        left = self.value(node.left)
        if isinstance(node.right, Literal):
            constant = node.right.value
            return lambda attributes: test(left(attributes), constant)
        right = self.value(node.right)
        return lambda attributes: test(left(attributes), right(attributes))

    def call(self, node: Call) -> Program:
        if node.name == "conditional":
            condition, when_true, when_false = (self.value(a) for a in node.args)
            return lambda attributes: when_true(attributes) if condition(attributes) else when_false(attributes)
        impl = FUNCTIONS[node.name].impl
        assert impl is not None
        if node.name == "matches" and isinstance(node.target, Literal):
            search, text = compile_regex(node.target.value).search, self.value(node.args[0])
            return lambda attributes: search(text(attributes)) is not None
        arguments = [*([node.target] if node.target is not None else []), *node.args]
        if all(isinstance(a, Literal) for a in arguments):
            try:
                return _constant(impl(*(a.value for a in arguments if isinstance(a, Literal))))
            except EvaluationError:
                pass  # fails at evaluation, where Mixer fails
        programs = [self.value(a) for a in arguments]
        if len(programs) == 1:
            only = programs[0]
            return lambda attributes: impl(only(attributes))
        if len(programs) == 2:
            first, second = programs
            return lambda attributes: impl(first(attributes), second(attributes))
        return lambda attributes: impl(*(p(attributes) for p in programs))
