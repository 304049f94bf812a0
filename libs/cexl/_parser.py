"""The parser: Go's expression grammar, cut down to what Mixer's ast package accepts.

Binary operators take Go's precedence (istio/istio mixer/pkg/lang/ast parses with Go's
go/parser), all left-associative:

    4   +  |            (Go's level 4; -, ^ exist in Go but not in CEXL)
    3   ==  !=  <  <=  >  >=
    2   &&
    1   ||

so `a | "x" == b` is `(a | "x") == b`.  Unary `!`, calls, selectors and `[ ]` bind tighter
than any binary operator.  A dotted run of identifiers is one attribute name; a dotted name
followed by `(` is a method call on the attribute before the last dot.

Precedence climbing keeps Python's recursion proportional to nesting, not to an expression's
length; nesting (parentheses, arguments, indexes, `!`) and tree depth are both bounded, so a
hostile expression fails with CexlError instead of RecursionError.
"""

from __future__ import annotations

from libs.cexl._ast import Attribute, Call, Chain, Compare, Index, Literal, Node, Not
from libs.cexl._errors import CexlError
from libs.cexl._lexer import Token, tokenize
from libs.cexl._times import parse_go_duration
from libs.cexl._types import ValueType

MAX_NESTING = 64
MAX_DEPTH = 64

_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "+": 4, "|": 4}
_CHAINS = frozenset({"||", "&&", "|", "+"})
# Go's binary operators that CEXL lacks (Mixer rejects them as unknown functions).
_UNSUPPORTED_BINARY = frozenset({"-", "^", "*", "/", "%", "&", "<<", ">>", "&^"})
_UNSUPPORTED_UNARY = frozenset({"-", "+", "^", "*", "&", "<-"})


def parse_tree(text: str) -> Node:
    parser = _Parser(text)
    if parser.peek().kind == "eof":
        raise CexlError(-1, "empty expression")
    node = parser.expression(0, 0)
    token = parser.peek()
    if token.kind != "eof":
        raise CexlError(token.pos, f"unexpected {_describe(token)}")
    return node


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "end of expression"
    if token.kind == "op":
        hint = " (compare with '==')" if token.text in ("=", ":=") else ""
        return f"'{token.text}'{hint}"
    if token.kind == "ident":
        return f"identifier `{token.text}`"
    return f"{token.kind} literal {token.text}"


def _deepen(depth: int, pos: int) -> int:
    if depth > MAX_DEPTH:
        raise CexlError(pos, f"expression is nested more than {MAX_DEPTH} levels deep")
    return depth


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, op: str) -> Token:
        token = self.peek()
        if token.kind != "op" or token.text != op:
            raise CexlError(token.pos, f"expected '{op}', found {_describe(token)}")
        return self.take()

    def is_op(self, op: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "op" and token.text == op

    def nest(self, nesting: int, pos: int) -> int:
        if nesting >= MAX_NESTING:
            raise CexlError(pos, f"expression is nested more than {MAX_NESTING} levels deep")
        return nesting + 1

    def expression(self, min_precedence: int, nesting: int) -> Node:
        left = self.unary(nesting)
        while True:
            token = self.peek()
            if token.kind != "op":
                return left
            if token.text in _UNSUPPORTED_BINARY:
                raise CexlError(token.pos, f"operator '{token.text}' is not supported")
            precedence = _PRECEDENCE.get(token.text)
            if precedence is None or precedence < min_precedence:
                return left
            self.take()
            left = self.combine(token, left, self.expression(precedence + 1, nesting))

    def combine(self, token: Token, left: Node, right: Node) -> Node:
        op, pos = token.text, token.pos
        if op not in _CHAINS:
            return Compare(left.start, pos, op, left, right, _deepen(1 + max(left.depth, right.depth), pos))
        if isinstance(left, Chain) and left.op == op:
            return Chain(left.start, op, (*left.operands, right), (*left.positions, pos),
                         _deepen(max(left.depth, 1 + right.depth), pos))
        return Chain(left.start, op, (left, right), (pos,), _deepen(1 + max(left.depth, right.depth), pos))

    def unary(self, nesting: int) -> Node:
        token = self.peek()
        if token.kind == "op" and token.text == "!":
            self.take()
            operand = self.unary(self.nest(nesting, token.pos))
            return Not(token.pos, operand, _deepen(1 + operand.depth, token.pos))
        if token.kind == "op" and token.text in _UNSUPPORTED_UNARY:
            raise CexlError(token.pos, f"unary operator '{token.text}' is not supported")
        return self.postfix(nesting)

    def postfix(self, nesting: int) -> Node:
        node = self.primary(nesting)
        while True:
            token = self.peek()
            if self.is_op("["):
                self.take()
                key = self.expression(0, self.nest(nesting, token.pos))
                self.expect("]")
                node = Index(node.start, token.pos, node, key, _deepen(1 + max(node.depth, key.depth), token.pos))
            elif self.is_op("."):
                self.take()
                name = self.peek()
                if name.kind != "ident":
                    raise CexlError(name.pos, f"expected a method name, found {_describe(name)}")
                self.take()
                if not self.is_op("("):
                    raise CexlError(name.pos, f"`.{name.text}` on an expression must be a method call")
                node = self.call(node.start, name, node, nesting)
            elif self.is_op("("):
                raise CexlError(token.pos, "only a function or method name can be called")
            else:
                return node

    def primary(self, nesting: int) -> Node:
        token = self.take()
        if token.kind == "int":
            return Literal(token.pos, token.value, ValueType.INT64)
        if token.kind == "float":
            return Literal(token.pos, token.value, ValueType.DOUBLE)
        if token.kind == "string":
            duration = parse_go_duration(token.value)
            if duration is not None:
                return Literal(token.pos, duration, ValueType.DURATION, token.value)
            return Literal(token.pos, token.value, ValueType.STRING, token.value)
        if token.kind == "ident":
            return self.name(token, nesting)
        if token.kind == "op" and token.text == "(":
            inner = self.expression(0, self.nest(nesting, token.pos))
            self.expect(")")
            return inner
        raise CexlError(token.pos, f"unexpected {_describe(token)}")

    def name(self, first: Token, nesting: int) -> Node:
        parts = [first]
        while self.is_op(".") and self.peek(1).kind == "ident":
            self.take()
            parts.append(self.take())
        if self.is_op("("):
            if len(parts) == 1:
                return self.call(first.pos, first, None, nesting)
            target = Attribute(first.pos, ".".join(p.text for p in parts[:-1]))
            return self.call(first.pos, parts[-1], target, nesting)
        if len(parts) == 1 and first.text.lower() in ("true", "false"):
            # Mixer reads true and false case-insensitively.
            return Literal(first.pos, first.text.lower() == "true", ValueType.BOOL)
        return Attribute(first.pos, ".".join(p.text for p in parts))

    def call(self, start: int, name: Token, target: Node | None, nesting: int) -> Call:
        opening = self.expect("(")
        inner = self.nest(nesting, opening.pos)
        args: list[Node] = []
        while not self.is_op(")"):
            args.append(self.expression(0, inner))
            if not self.is_op(","):
                break
            self.take()
        self.expect(")")
        depth = 1 + max([a.depth for a in args] + [target.depth if target is not None else 0])
        return Call(start, name.pos, name.text, target, tuple(args), _deepen(depth, name.pos))
