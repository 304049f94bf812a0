"""The syntax tree the parser builds, and the attributes a tree may read.

Nodes compare by identity (the checker keys each node's type on the node itself).  `start`
is the offset of a node's first character; `pos` that of the token an error about the node
points at (an operator, a bracket, a function's name).  `depth` bounds the recursion of
everything that walks the tree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from libs.cexl._types import ValueType


@dataclass(frozen=True, slots=True, eq=False)
class Literal:
    start: int
    value: Any
    type: ValueType
    text: str | None = None  # for literals written as strings (STRING and DURATION), the decoded text
    depth: int = 1


@dataclass(frozen=True, slots=True, eq=False)
class Attribute:
    start: int
    name: str
    depth: int = 1


@dataclass(frozen=True, slots=True, eq=False)
class Index:
    start: int
    pos: int
    target: Node
    key: Node
    depth: int


@dataclass(frozen=True, slots=True, eq=False)
class Call:
    """A function call, or with `target` a method call: `target.name(args)`."""

    start: int
    pos: int
    name: str
    target: Node | None
    args: tuple[Node, ...]
    depth: int


@dataclass(frozen=True, slots=True, eq=False)
class Not:
    start: int
    operand: Node
    depth: int


@dataclass(frozen=True, slots=True, eq=False)
class Compare:
    """`left op right` for == != < <= > >=."""

    start: int
    pos: int
    op: str
    left: Node
    right: Node
    depth: int


@dataclass(frozen=True, slots=True, eq=False)
class Chain:
    """A run of one associative operator (&& || | +), left to right; `positions[i]` is the
    offset of the operator before `operands[i + 1]`."""

    start: int
    op: str
    operands: tuple[Node, ...]
    positions: tuple[int, ...]
    depth: int


Node = Literal | Attribute | Index | Call | Not | Compare | Chain


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Index):
        return (node.target, node.key)
    if isinstance(node, Call):
        return (node.args if node.target is None else (node.target, *node.args))
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, Chain):
        return node.operands
    return ()


def map_key(name: str, key: str) -> str:
    """How `references` names one key of a map attribute: the CEXL expression reading it."""
    return f"{name}[{json.dumps(key, ensure_ascii=False)}]"


def references(node: Node) -> set[str]:
    """Every attribute `node` may read: a plain attribute by its name, one key of a map
    attribute as map_key() renders it (reading it also reads whether the map is present),
    and a map read whole (as a value, or with a key only known at run time) by its name."""
    if isinstance(node, Attribute):
        return {node.name}
    if isinstance(node, Index) and isinstance(node.key, Literal) and node.key.type is ValueType.STRING:
        return _keyed(node.target, node.key.value)
    found: set[str] = set()
    for child in children(node):
        found |= references(child)
    return found


def _keyed(target: Node, key: str) -> set[str]:
    """What `target[key]` reads, following the map through `|` and conditional()."""
    if isinstance(target, Attribute):
        return {map_key(target.name, key)}
    if isinstance(target, Chain) and target.op == "|":
        return set().union(*(_keyed(operand, key) for operand in target.operands))
    if isinstance(target, Call) and target.name == "conditional" and len(target.args) == 3:
        condition, when_true, when_false = target.args
        return references(condition) | _keyed(when_true, key) | _keyed(when_false, key)
    return references(target)
