"""`mizzenctl x ca status|rotate`: citadel's root and its rotation, through `/ca/rotation`
on citadel's monitoring port.

    mizzenctl x ca status             the phase, the roots, what the rotation waits for
    mizzenctl x ca rotate [--wait]    begin a rotation; --wait follows it to the end

Citadel begins a rotation only when asked from its own host (on Kubernetes: through
`kubectl port-forward` to the citadel pod).  Its URL: `--citadel`, MIZZEN_CITADEL_URL, the
local mesh's, else http://127.0.0.1:9093.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tools.localmesh.state import MeshState
from tools.mizzenctl import contexts
from tools.mizzenctl.sources import SourceError, get_json

__all__ = ["add_parser", "citadel_url", "render"]

DEFAULT_CITADEL = "http://127.0.0.1:9093"
PATH = "/ca/rotation"
Json = dict[str, Any]


def citadel_url(args: argparse.Namespace) -> str:
    if args.citadel:
        return str(args.citadel).rstrip("/")
    if os.environ.get("MIZZEN_CITADEL_URL"):
        return os.environ["MIZZEN_CITADEL_URL"].rstrip("/")
    state = MeshState.read(Path(args.state_dir or contexts.LOCAL_DEFAULT))
    if state is not None and state.monitoring.get("citadel"):
        return state.monitoring["citadel"].rstrip("/")
    return DEFAULT_CITADEL


def render(status: Json) -> str:
    lines = [f"trust domain: {status.get('trust_domain', '')}"]
    if not status.get("rotatable"):
        lines.append("citadel signs with a plugged-in CA (cacerts): its roots are the operator's to rotate")
        return "\n".join(lines) + "\n"
    lines.append(f"phase: {status['phase']} (since {status['phase_since']})")
    automatic = status.get("automatic_rotation_at")
    lines.append(f"automatic rotation: {automatic or 'off'}")
    lines.append(f"holders reporting: {status.get('reporting_holders', 0)}")
    lines.append("roots:")
    for root in status.get("roots", []):
        lines.append(f"  {root['role']:<9} {root['fingerprint'][:16]}  not after {root['not_after']}  "
                     f"{root['subject']}")
    step = status.get("step")
    if step:
        lines.append(f"next: {step['action']}: {step['reason']}")
        waiting = step.get("waiting_on") or []
        if waiting:
            more = step.get("waiting_count", len(waiting)) - len(waiting)
            lines.append("waiting on: " + ", ".join(waiting) + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines) + "\n"


def _status(url: str) -> Json:
    return dict(get_json(url, PATH, what="citadel"))


def _print(status: Json, output: str) -> None:
    if output == "json":
        print(json.dumps(status, indent=2))
    else:
        print(render(status), end="")


def _fail(message: str, args: argparse.Namespace) -> int:
    print(f"error: {message}", file=sys.stderr)
    if not args.citadel:
        print(f"(citadel at {citadel_url(args)}; --citadel URL names another)", file=sys.stderr)
    return 1


def status_command(args: argparse.Namespace) -> int:
    try:
        _print(_status(citadel_url(args)), args.output)
    except SourceError as exc:
        return _fail(str(exc), args)
    return 0


def rotate_command(args: argparse.Namespace) -> int:
    url = citadel_url(args)
    try:
        before = _status(url)
        response = httpx.post(f"{url}{PATH}", timeout=10.0)
    except (SourceError, httpx.HTTPError) as exc:
        return _fail(f"cannot reach citadel at {url}: {exc}", args)
    if response.status_code not in (200, 202):
        detail = response.json().get("detail", response.text) if response.headers.get(
            "content-type", "").startswith("application/json") else response.text
        return _fail(f"citadel refused the rotation ({response.status_code}): {detail}", args)
    old = before.get("roots", [{}])[0].get("fingerprint", "")
    print(f"root rotation begun (signing root {old[:16]})")
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.timeout
    shown = ""
    while time.monotonic() < deadline:
        try:
            status = _status(url)
        except SourceError as exc:
            return _fail(str(exc), args)
        step = status.get("step") or {}
        line = f"{status['phase']}: {step.get('action', '')}: {step.get('reason', '')}"
        if line != shown:
            print(line)
            shown = line
        signing = status.get("roots", [{}])[0].get("fingerprint", "")
        if status["phase"] == "stable" and signing and signing != old:
            print(f"root rotation done: signing root {signing[:16]}, the old root dropped")
            return 0
        time.sleep(args.poll_interval)
    return _fail(f"the rotation did not finish within {args.timeout:g}s; `mizzenctl x ca status` shows what "
                 "it waits for", args)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ca", help="citadel's root and its rotation",
                                 description="Show citadel's roots and root rotation, or begin a rotation.")
    sub = parser.add_subparsers(dest="ca_command", required=True)
    status = sub.add_parser("status", help="the rotation's phase, the roots, what it waits for",
                            description="Show citadel's roots, the rotation's phase and what it waits for.")
    rotate = sub.add_parser("rotate", help="begin a root rotation (from citadel's host)",
                            description="Begin a rotation of citadel's self-signed root: a new root is published "
                                        "beside the old, workloads move to it, the old one is dropped.")
    rotate.add_argument("--wait", action="store_true", help="follow the rotation until the old root is dropped")
    rotate.add_argument("--timeout", type=float, default=1800.0, help="seconds --wait waits (default 1800)")
    rotate.add_argument("--poll-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    for each in (status, rotate):
        each.add_argument("--citadel", metavar="URL",
                          help=f"citadel's monitoring URL [env MIZZEN_CITADEL_URL; default: the local mesh's, else "
                               f"{DEFAULT_CITADEL}]")
        each.add_argument("--state-dir", default=contexts.default_state_dir(),
                          help="local mesh state dir, to find its citadel [env MIZZEN_STATE_DIR]")
    status.add_argument("-o", "--output", choices=("short", "json"), default="short")
    status.set_defaults(run=status_command)
    rotate.set_defaults(run=rotate_command)
