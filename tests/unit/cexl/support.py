"""What the CEXL tests share: Mixer's made-up test vocabulary (mixer/pkg/il/testing), a few
values, a Mapping that records what an evaluation probes, and an S-expression rendering of
the syntax tree for precedence tests."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from libs.cexl import Expression, ValueType
from libs.cexl._ast import Attribute, Call, Chain, Compare, Index, Literal, Node, Not

S, I, D, B = ValueType.STRING, ValueType.INT64, ValueType.DOUBLE, ValueType.BOOL  # noqa: E741
T, DUR, IP, MAP = ValueType.TIMESTAMP, ValueType.DURATION, ValueType.IP_ADDRESS, ValueType.STRING_MAP
DNS, EMAIL, URI = ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI

# Mixer's defaultAttrs, plus `a`, `b`, ... for syntax tests.
TEST_VOCABULARY: dict[str, ValueType] = {
    "ai": I, "bi": I, "ab": B, "bb": B, "b1": B, "b2": B, "abc": S, "bs": S, "ad": D, "bd": D,
    "ar": MAP, "br": MAP, "sm": MAP, "adur": DUR, "bdur": DUR, "at": T, "bt": T, "t1": T, "t2": T,
    "aip": IP, "bip": IP, "adns": DNS, "bdns": DNS, "amail": EMAIL, "bmail": EMAIL, "auri": URI, "buri": URI,
    "a": B, "b": B, "c": B, "d": B, "x.y.z": S,
}

T1 = datetime.datetime(2015, 1, 2, 15, 4, 35, tzinfo=datetime.UTC)
T2 = datetime.datetime(2015, 1, 2, 15, 4, 34, tzinfo=datetime.UTC)
IP1 = ipaddress.ip_address("1.2.3.4")
IP2 = ipaddress.ip_address("4.5.6.7")


class Recording(Mapping[str, Any]):
    """Attributes that note every name probed (with `in`) or read (with `[]`)."""

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.attributes = attributes
        self.probed: list[str] = []

    def __getitem__(self, name: str) -> Any:
        self.probed.append(name)
        return self.attributes[name]

    def __contains__(self, name: object) -> bool:
        self.probed.append(str(name))
        return name in self.attributes

    def __iter__(self) -> Iterator[str]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)


def render(expression: Expression) -> str:
    """The tree as an S-expression: `(== (| a b) c)`, `(call f a b)`, `([] m "k")`."""
    return _render(expression._root)


def _render(node: Node) -> str:
    if isinstance(node, Literal):
        return repr(node.value) if node.type is ValueType.STRING else str(node.value)
    if isinstance(node, Attribute):
        return node.name
    if isinstance(node, Index):
        return f"([] {_render(node.target)} {_render(node.key)})"
    if isinstance(node, Not):
        return f"(! {_render(node.operand)})"
    if isinstance(node, Compare):
        return f"({node.op} {_render(node.left)} {_render(node.right)})"
    if isinstance(node, Chain):
        return f"({node.op} {' '.join(_render(o) for o in node.operands)})"
    assert isinstance(node, Call)
    target = f"{_render(node.target)}." if node.target is not None else ""
    return f"(call {target}{node.name} {' '.join(_render(a) for a in node.args)})".replace(" )", ")")
