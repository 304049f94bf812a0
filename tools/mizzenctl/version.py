"""`mizzenctl version`: the client's version, each control-plane service's (its monitoring
server's `/version`) and the data plane's (every connected proxy's agent and Envoy, from
pilot's syncz), in istioctl's shape:

    client version: 0.1.0
    control plane version: 0.1.0
    data plane version: 0.1.0 (8 proxies)
    envoy version: 1.40.0 (8 proxies)

`-o json|yaml` gives every component and proxy, as istioctl's `meshVersion` and
`dataPlaneVersion`.  The local mesh names every service's monitoring URL in its state
file; any other mesh is asked through pilot only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tools.localmesh.state import MeshState
from tools.mizzenctl import contexts
from tools.mizzenctl.sources import SourceError, add_pilot_flags, get_json, pilot_urls, syncz

__all__ = ["Versions", "collect", "render", "summarize"]

Json = dict[str, Any]
Versions = dict[str, Any]


def client_info() -> Json:
    from libs.runtime import build_info

    return build_info()


def control_plane_urls(args: argparse.Namespace) -> dict[str, str]:
    """Each control-plane service's monitoring URL: the local mesh's, else pilot's only."""
    state = MeshState.read(Path(getattr(args, "state_dir", None) or contexts.LOCAL_DEFAULT))
    if state is not None and state.monitoring:
        return dict(state.monitoring)
    urls = pilot_urls(args)
    return {"pilot" if len(urls) == 1 else f"pilot-{i}": url for i, url in enumerate(urls)}


def collect(args: argparse.Namespace) -> tuple[Versions, list[str]]:
    """(istioctl's version document, the errors met on the way)."""
    errors: list[str] = []
    mesh: list[Json] = []
    for component, url in control_plane_urls(args).items():
        try:
            mesh.append({"Component": component, "URL": url, "Info": get_json(url, "/version", what=component)})
        except SourceError as exc:
            errors.append(str(exc))
    data: list[Json] = []
    try:
        rows = syncz(pilot_urls(args))
    except SourceError as exc:
        errors.append(str(exc))
        rows = []
    for row in sorted(rows, key=lambda r: str(r.get("name") or r["proxy"])):
        data.append({"ID": row["proxy"], "Name": row.get("name", ""), "MizzenVersion": row.get("agent_version", ""),
                     "EnvoyVersion": row.get("proxy_version", "")})
    return {"clientVersion": client_info(), "meshVersion": mesh, "dataPlaneVersion": data}, errors


def _counted(values: list[str], what: str) -> str:
    counts = Counter(value or "unknown" for value in values)
    return ", ".join(f"{version} ({count} {what})" for version, count in sorted(counts.items()))


def summarize(versions: Versions) -> list[str]:
    """istioctl's short lines; the control plane's distinct versions, the data plane's with
    how many proxies run each."""
    lines = [f"client version: {versions['clientVersion'].get('version', 'unknown')}"]
    mesh = versions["meshVersion"]
    if mesh:
        distinct = sorted({str(c["Info"].get("version", "unknown")) for c in mesh})
        lines.append(f"control plane version: {', '.join(distinct)}")
    data = versions["dataPlaneVersion"]
    if data:
        lines.append(f"data plane version: {_counted([p['MizzenVersion'] for p in data], 'proxies')}")
        lines.append(f"envoy version: {_counted([p['EnvoyVersion'] for p in data], 'proxies')}")
    elif mesh:
        lines.append("data plane version: none (no proxies connected)")
    return lines


def render(versions: Versions, output: str) -> str:
    if output == "json":
        return json.dumps(versions, indent=2) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(versions, sort_keys=False))
    return "\n".join(summarize(versions)) + "\n"


def run(args: argparse.Namespace) -> int:
    if not args.remote:
        versions: Versions = {"clientVersion": client_info(), "meshVersion": [], "dataPlaneVersion": []}
        print(render(versions, args.output), end="")
        return 0
    versions, errors = collect(args)
    print(render(versions, args.output), end="")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"({contexts.explain(args)})", file=sys.stderr)
    return 1 if errors else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("version", help="client, control plane and data plane versions (istioctl version)",
                                 description="Print the version of mizzenctl, of each control-plane service "
                                             "(its /version) and of every connected proxy's agent and Envoy.")
    parser.add_argument("-o", "--output", choices=("short", "json", "yaml"), default="short")
    parser.add_argument("--remote", action=argparse.BooleanOptionalAction, default=True,
                        help="also ask the mesh (--no-remote: the client's version only)")
    add_pilot_flags(parser)
    parser.set_defaults(run=run)
