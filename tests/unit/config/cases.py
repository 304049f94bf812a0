"""Table rows for the invalid-config tests, and how to run one through `parse_text`.

Each row is a resource (kind + spec YAML) that Istio's rules reject, the field path the
error must name and a fragment of the reason.  Running it through `parse_text` checks the
full message format: `Kind namespace/name: path: reason`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import yaml

from libs.config import ParseResult, parse_text

_GROUPS = {
    "AuthorizationPolicy": "security.istio.io/v1",
    "PeerAuthentication": "security.istio.io/v1",
    "RequestAuthentication": "security.istio.io/v1",
}


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    spec: str
    path: str
    reason: str
    name: str = "demo"
    annotations: dict[str, str] = field(default_factory=dict)


def document(kind: str, spec: str, *, name: str = "demo", annotations: dict[str, str] | None = None,
             api_version: str | None = None) -> str:
    metadata: dict[str, object] = {"name": name, "namespace": "default"}
    if annotations:
        metadata["annotations"] = annotations
    body = {
        "apiVersion": api_version or _GROUPS.get(kind, "networking.istio.io/v1"),
        "kind": kind,
        "metadata": metadata,
        "spec": yaml.safe_load(textwrap.dedent(spec)),
    }
    return yaml.safe_dump(body, sort_keys=False)


def parse(kind: str, spec: str, **kwargs: object) -> ParseResult:
    return parse_text(document(kind, spec, **kwargs), "case.yaml")  # type: ignore[arg-type]


def assert_rejected(case: Case) -> None:
    result = parse(case.kind, case.spec, name=case.name, annotations=case.annotations)
    assert not result.resources, f"{case.id}: accepted, expected an error at {case.path}"
    assert len(result.invalid) == 1, result.errors()
    lines = result.invalid[0].lines()
    prefix = f"{case.kind} default/{case.name}: {case.path}: "
    matching = [line for line in lines if line.startswith(prefix) and case.reason in line]
    assert matching, f"{case.id}: no error '{prefix}...{case.reason}...' among:\n" + "\n".join(lines)
