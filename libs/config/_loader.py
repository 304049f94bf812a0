"""Reading YAML safely: bounded size, nesting depth and alias expansion.

Config arrives from users and from the network, so the reader must fail fast and
clearly on hostile input.  libyaml's composer recurses in C and crashes the process on
deep nesting, and aliases ("billion laughs") expand exponentially once walked.  So a
first, streaming pass over libyaml's events (no recursion) measures depth and the
expanded node count; only input within the limits is then constructed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from libs.config._errors import DocumentError, Origin

try:
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class _ConfigLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loading, minus the timestamp resolver: config carries strings, not datetimes,
    and datetimes would not survive the JSON that config travels in."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on one file or request body."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64
    # Nodes after expanding aliases, per document.
    max_nodes: int = 200_000
    max_documents: int = 10_000


DEFAULT_LIMITS = LoadLimits()


@dataclass(frozen=True)
class Document:
    origin: Origin
    body: Any


def _check_events(text: str, source: str, limits: LoadLimits) -> None:
    depth = 0
    # Per open collection: [nodes so far, anchor or None].
    stack: list[list[Any]] = []
    anchors: dict[str, int] = {}
    document = 0
    total = 0

    def add(nodes: int) -> None:
        nonlocal total
        total += nodes
        if stack:
            stack[-1][0] += nodes
        if total > limits.max_nodes:
            raise DocumentError(Origin(source, document),
                                f"document expands to more than {limits.max_nodes} nodes "
                                "(alias expansion or size limit)")

    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                total = 0
                anchors.clear()
            elif isinstance(event, yaml.DocumentEndEvent):
                document += 1
                if document > limits.max_documents:
                    raise DocumentError(Origin(source), f"more than {limits.max_documents} documents")
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise DocumentError(Origin(source, document), f"unknown alias *{event.anchor}")
                add(anchors[event.anchor])
            elif isinstance(event, yaml.ScalarEvent):
                add(1)
                if event.anchor:
                    anchors[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limits.max_depth:
                    raise DocumentError(Origin(source, document),
                                        f"nesting deeper than {limits.max_depth} levels")
                stack.append([1, event.anchor])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                nodes, anchor = stack.pop()
                if anchor:
                    anchors[anchor] = nodes
                add(nodes)
    except yaml.YAMLError as exc:
        raise _refusal(exc, text, Origin(source, document), limits) from exc


def _refusal(exc: yaml.YAMLError, text: str, origin: Origin, limits: LoadLimits) -> DocumentError:
    # libyaml's scanner reads ahead through flow collections ("[[[[...") and, since
    # PyYAML 6.0.4, stops at its own nesting limit before a single event is seen.  The
    # refusal must read the same whichever parser (and wording) is installed.
    if _flow_depth(text) > limits.max_depth:
        return DocumentError(origin, f"nesting deeper than {limits.max_depth} levels")
    return DocumentError(origin, f"invalid YAML: {_yaml_reason(exc)}")


# Quoted scalars and comments, whose brackets do not nest, and the flow indicators that do.
_FLOW_TOKENS = re.compile(r""""(?:\\.|[^"\\])*"|'(?:''|[^'])*'|(?:^|(?<=\s))#[^\n]*|[\[\]{}]""", re.MULTILINE)


def _flow_depth(text: str) -> int:
    """The deepest flow-collection nesting in `text`, counted lexically (only called once
    the parser has already refused the text, to say why in Mizzen's own words)."""
    depth = deepest = 0
    for match in _FLOW_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth = max(depth - 1, 0)
    return deepest


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def decode(data: bytes, source: str, limits: LoadLimits = DEFAULT_LIMITS) -> str:
    if len(data) > limits.max_bytes:
        raise DocumentError(Origin(source), f"{len(data)} bytes is more than the {limits.max_bytes}-byte limit")
    if b"\x00" in data:
        raise DocumentError(Origin(source), "binary data (NUL bytes), not YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(Origin(source), f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


# The C composer recurses once per nesting level and crashes the process somewhere past
# 10,000 levels; below this bound it is safe to hand it the text.
_C_COMPOSER_SAFE_DEPTH = 2_000


def _nesting_bound(text: str) -> int:
    """An upper bound on how deep `text` can nest: every level needs a bracket, a new
    line or a `- `/`: ` indicator.  Cheap, and far above real files' depth."""
    return (text.count("[") + text.count("{") + text.count("\n") + text.count("- ") + text.count(": ")
            + text.count("? ") + 1)


def _depth_of(value: Any, limit: int) -> bool:
    """True when `value` nests no deeper than `limit` (iterative, no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in item)
    return True


def load_documents(data: bytes | str, source: str, limits: LoadLimits = DEFAULT_LIMITS) -> list[Document]:
    """Parse every YAML document of `data`, skipping empty ones.

    Raises `DocumentError` for the whole input when it is not YAML or is over a limit:
    a file that cannot be read whole is not half-applied.  Text without anchors (so
    without aliases to expand) and shallow enough for libyaml's composer takes the fast
    path; anything else is checked event by event before it is built.
    """
    text = decode(data, source, limits) if isinstance(data, bytes) else data
    if isinstance(data, str) and len(text.encode()) > limits.max_bytes:
        raise DocumentError(Origin(source), f"more than the {limits.max_bytes}-byte limit")
    fast = "&" not in text and _nesting_bound(text) < _C_COMPOSER_SAFE_DEPTH
    if not fast:
        _check_events(text, source, limits)
    documents: list[Document] = []
    try:
        for index, body in enumerate(_iter_bodies(text)):
            if index >= limits.max_documents:
                raise DocumentError(Origin(source), f"more than {limits.max_documents} documents")
            if body is None:
                continue
            if fast and not _depth_of(body, limits.max_depth):
                raise DocumentError(Origin(source, index), f"nesting deeper than {limits.max_depth} levels")
            documents.append(Document(Origin(source, index), body))
    except yaml.YAMLError as exc:
        raise _refusal(exc, text, Origin(source), limits) from exc
    except RecursionError as exc:  # pragma: no cover - prevented by the depth check
        raise DocumentError(Origin(source), "nesting too deep") from exc
    return documents


def _iter_bodies(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=_ConfigLoader)  # a SafeLoader subclass: no arbitrary objects
