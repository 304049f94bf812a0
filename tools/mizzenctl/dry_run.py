"""`mizzenctl apply --dry-run` and `delete --dry-run`'s second half: what the files would
change in each proxy's Envoy config, from pilot's `/debug/dryrun`.

For an apply, the resources galley found valid are sent (a `kind: List`); for a delete,
the files as they are (every document names what it deletes, valid or not).  They go to
every pilot the mesh context knows; each answers for the proxies connected to it,
comparing what it last sent each proxy with what it would send once the files are applied
or deleted.  Per proxy whose config would change, each changed cluster, load assignment,
listener and route configuration is printed as a unified diff
(`--- <proxy> <type> <name> (now)`, `+++ ... (after apply)`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from libs.config import Resource, parse_text
from tools.mizzenctl import contexts
from tools.mizzenctl.sources import SourceError, pilot_urls

__all__ = ["Effect", "ask", "ask_delete", "merge", "proposed", "render", "show", "show_delete"]

Json = dict[str, Any]
# The order pilot pushes them in, and the words `proxy-config` uses.
TYPES = ("clusters", "endpoints", "listeners", "routes")
TIMEOUT_S = 120.0


def proposed(inputs: Iterable[tuple[str, bytes]], namespace: str) -> list[Resource]:
    """The valid resources of every file, in order (a later one with the same name wins,
    as it would in an apply)."""
    return [resource for source, data in inputs
            for _, resource in parse_text(data, source, default_namespace=namespace).resources]


def ask(url: str, resources: list[Resource]) -> Json:
    """One pilot's answer for the proxies connected to it, were `resources` applied."""
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": [r.to_dict() for r in resources]})
    return _post(url, body.encode(), "apply")


def ask_delete(url: str, documents: bytes, namespace: str) -> Json:
    """One pilot's answer for the proxies connected to it, were what `documents` name deleted."""
    return _post(url, documents, "delete", namespace=namespace)


def _post(url: str, body: bytes, action: str, namespace: str = "default") -> Json:
    try:
        response = httpx.post(f"{url}/debug/dryrun", content=body, params={"action": action, "namespace": namespace},
                              headers={"content-type": "application/yaml"}, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach pilot at {url}: {exc}") from exc
    if response.status_code != 200:
        raise SourceError(f"pilot at {url} answered {response.status_code} to /debug/dryrun: {_detail(response)}",
                          response.status_code)
    answer: Json = response.json()
    return answer


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text.strip()
    if isinstance(detail, dict):
        return "; ".join([str(detail.get("message", "")), *map(str, detail.get("errors", []))])
    return str(detail)


@dataclass
class Effect:
    """Every pilot's answer, merged: each proxy is connected to one of them."""

    proxies: list[Json] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def merge(answers: Iterable[Json]) -> Effect:
    effect = Effect()
    seen: set[str] = set()
    for answer in answers:
        for proxy in answer["proxies"]:
            if proxy["proxy"] not in seen:
                seen.add(proxy["proxy"])
                effect.proxies.append(proxy)
        effect.unchanged.extend(name for name in answer["unchanged"] if name not in effect.unchanged)
    effect.proxies.sort(key=lambda p: p["name"])
    return effect


def _counts(proxy: Json) -> str:
    parts = []
    for kind in TYPES:
        changes = proxy["changes"].get(kind, [])
        verbs: dict[str, int] = {}
        for change in changes:
            verbs[change["change"]] = verbs.get(change["change"], 0) + 1
        if verbs:
            parts.append(f"{kind} " + ", ".join(f"{n} {verb}" for verb, n in sorted(verbs.items())))
    return "; ".join(parts)


def render(effect: Effect) -> tuple[list[str], list[str]]:
    """(lines for stdout, lines for stderr)."""
    out: list[str] = []
    err: list[str] = []
    for proxy in effect.proxies:
        name = proxy["name"]
        for reason in proxy.get("unsettled", []):
            err.append(f"note: {name}: {reason}; its diff starts from what pilot last sent it")
        if proxy.get("error"):
            err.append(f"warning: {name}: {proxy['error']}")
        if not proxy["changes"]:
            continue
        out.append(f"{name}: {_counts(proxy)}")
        for kind in TYPES:
            for change in proxy["changes"].get(kind, []):
                out.append(change["diff"])
    changed = sum(1 for p in effect.proxies if p["changes"])
    compared = len(effect.proxies) + len(effect.unchanged)
    if not changed:
        out.append(f"no proxy's config would change ({compared} compared; dry run, nothing was stored)")
    else:
        out.append(f"{changed} of {compared} proxies' config would change (dry run, nothing was stored)")
    return out, err


def show(args: argparse.Namespace, inputs: list[tuple[str, bytes]]) -> tuple[list[str], list[str], bool]:
    """(stdout lines, stderr lines, whether it worked) for `apply --dry-run`'s files."""
    resources = proposed(inputs, args.namespace)
    if not resources:
        return [], [], True
    try:
        effect = merge(ask(url, resources) for url in pilot_urls(args))
    except SourceError as exc:
        return [], [f"error: cannot show what the files would change: {exc}; {contexts.explain(args)}"], False
    out, err = render(effect)
    return out, err, True


def show_delete(args: argparse.Namespace, inputs: list[tuple[str, bytes]]) -> tuple[list[str], list[str], bool]:
    """(stdout lines, stderr lines, whether it worked) for `delete --dry-run`'s files."""
    documents = b"\n---\n".join(data for _, data in inputs)
    try:
        effect = merge(ask_delete(url, documents, args.namespace) for url in pilot_urls(args))
    except SourceError as exc:
        return [], [f"error: cannot show what deleting would change: {exc}; {contexts.explain(args)}"], False
    out, err = render(effect)
    return out, err, True
