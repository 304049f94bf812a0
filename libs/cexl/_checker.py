"""The type checker: Mixer's rules (mixer/pkg/lang/ast EvalType), reporting the first
problem, left to right, with the offset of the token at fault.

- an attribute has its vocabulary type; an unknown name is an error;
- `m[k]` needs a STRING_MAP and a STRING key, and is a STRING;
- `==` `!=` need operands of one type (not STRING_MAP); `<` `<=` `>` `>=` one ordered type
  (strings, numbers, TIMESTAMP, DURATION); `+` one of STRING, INT64, DOUBLE (or another
  string type); each comparison is a BOOL;
- `&&` `||` and `!` need BOOLs; `a | b` needs one type and has it;
- a call needs a known function, used as a method exactly when it is one, with exactly its
  number of arguments, each of its parameter's type (conditional's branches share a type).

Beyond Mixer's checker, it rejects what Mixer would only reject when compiling or running:
an operator on a type Mixer's compiler has no code for, extra arguments, a literal argument
ip(), timestamp(), dnsName(), email() or uri() cannot convert, and a literal `matches`
pattern RE2 cannot compile.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from libs.cexl._ast import Attribute, Call, Chain, Compare, Index, Literal, Node, Not
from libs.cexl._errors import CexlError, EvaluationError
from libs.cexl._functions import FUNCTIONS, compile_regex
from libs.cexl._types import ADDABLE, EQUATABLE, ORDERED, ValueType

_B, _S = ValueType.BOOL, ValueType.STRING


def check_tree(root: Node, vocabulary: Mapping[str, ValueType]) -> tuple[ValueType, dict[Node, ValueType]]:
    """The expression's type, and every node's."""
    checker = _Checker(vocabulary)
    return checker.visit(root), checker.types


class _Checker:
    def __init__(self, vocabulary: Mapping[str, ValueType]) -> None:
        self.vocabulary = vocabulary
        self.types: dict[Node, ValueType] = {}

    def visit(self, node: Node) -> ValueType:
        if isinstance(node, Literal):
            found = node.type
        elif isinstance(node, Attribute):
            found = self.attribute(node)
        elif isinstance(node, Index):
            found = self.index(node)
        elif isinstance(node, Not):
            self.expect(node.operand, _B, node.start, "'!' needs a BOOL operand")
            found = _B
        elif isinstance(node, Compare):
            found = self.compare(node)
        elif isinstance(node, Chain):
            found = self.chain(node)
        else:
            found = self.call(node)
        self.types[node] = found
        return found

    def expect(self, node: Node, wanted: ValueType, pos: int, what: str) -> None:
        found = self.visit(node)
        if found is not wanted:
            raise CexlError(pos, f"{what}, not {found.name}")

    def attribute(self, node: Attribute) -> ValueType:
        found = self.vocabulary.get(node.name)
        if found is None:
            close = difflib.get_close_matches(node.name, list(self.vocabulary), n=1, cutoff=0.8)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise CexlError(node.start, f"unknown attribute `{node.name}`{hint}")
        return found

    def index(self, node: Index) -> ValueType:
        self.expect(node.target, ValueType.STRING_MAP, node.pos, "only a STRING_MAP can be indexed")
        self.expect(node.key, _S, node.key.start, "a map key must be a STRING")
        return _S

    def compare(self, node: Compare) -> ValueType:
        left, right = self.visit(node.left), self.visit(node.right)
        if left is not right:
            raise CexlError(node.pos, f"cannot compare {left.name} to {right.name} with '{node.op}'")
        allowed = EQUATABLE if node.op in ("==", "!=") else ORDERED
        if left not in allowed:
            raise CexlError(node.pos, f"'{node.op}' is not defined on {left.name}")
        return _B

    def chain(self, node: Chain) -> ValueType:
        if node.op in ("&&", "||"):
            for operand in node.operands:
                self.expect(operand, _B, operand.start, f"'{node.op}' needs BOOL operands")
            return _B
        first = self.visit(node.operands[0])
        for operand, pos in zip(node.operands[1:], node.positions, strict=True):
            found = self.visit(operand)
            if found is not first:
                raise CexlError(pos, f"'{node.op}' needs operands of one type, got {first.name} and {found.name}")
        if node.op == "+" and first not in ADDABLE:
            raise CexlError(node.positions[0], f"'+' is not defined on {first.name}")
        return first

    def call(self, node: Call) -> ValueType:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise CexlError(node.pos, f"unknown function `{node.name}`")
        if function.method and node.target is None:
            raise CexlError(node.pos, f"`{node.name}` is a method: call it as STRING.{node.name}(...)")
        if not function.method and node.target is not None:
            raise CexlError(node.pos, f"`{node.name}` is a function, not a method")
        if len(node.args) != len(function.params):
            raise CexlError(node.pos, f"`{node.name}` takes {len(function.params)} argument(s), got {len(node.args)}")
        if node.target is not None:
            self.expect(node.target, _S, node.target.start, f"`{node.name}` is a method of STRING")
        shared: ValueType | None = None
        for number, (arg, param) in enumerate(zip(node.args, function.params, strict=True), 1):
            found = self.visit(arg)
            if param is None:
                shared = shared or found
            wanted = param or shared or found
            if found is not wanted:
                reason = f"argument {number} of `{node.name}` must be {wanted.name}, not {found.name}"
                raise CexlError(arg.start, reason)
        self.literal_arguments(node)
        returns = function.returns or shared
        assert returns is not None
        return returns

    def literal_arguments(self, node: Call) -> None:
        """Fails now on a literal argument that would fail every evaluation."""
        function = FUNCTIONS[node.name]
        try:
            if function.converts and isinstance(node.args[0], Literal) and function.impl is not None:
                function.impl(node.args[0].value)
            if node.name == "matches" and isinstance(node.target, Literal):
                compile_regex(node.target.value)
        except EvaluationError as exc:
            at = node.target if node.name == "matches" and node.target is not None else node.args[0]
            raise CexlError(at.start, str(exc)) from None
