"""Talking to galley's API: where it is and the token it wants."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import httpx

from tools.localmesh.state import MeshState
from tools.mizzenctl import contexts

DEFAULT_GALLEY = "http://127.0.0.1:15019"


class GalleyUnreachable(Exception):
    """galley did not answer, or refused who asked: the message says which mesh was tried."""


def galley_url(args: argparse.Namespace) -> str:
    if args.galley:
        return str(args.galley)
    state = MeshState.read(Path(args.state_dir))
    if state is not None:
        return state.galley
    context = contexts.current()
    if context is not None and context.galley and not os.environ.get("MIZZEN_STATE_DIR"):
        return context.galley
    return DEFAULT_GALLEY


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--galley", default=os.environ.get("MIZZEN_GALLEY_URL"),
                        help="galley's API URL [env MIZZEN_GALLEY_URL; default: the local mesh's, else "
                             f"{DEFAULT_GALLEY}]")
    parser.add_argument("--state-dir", default=contexts.default_state_dir(),
                        help="local mesh state dir, where the API token is found [env MIZZEN_STATE_DIR; default: "
                             "the current context's]")
    parser.add_argument("--token", default=os.environ.get("MIZZEN_TOKEN"), help="API token [env MIZZEN_TOKEN]")


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    token_file = Path(args.state_dir) / "galley-token"
    if not token_file.is_file():
        context = contexts.current()
        token_file = Path(context.token_file) if context is not None and context.token_file else token_file
    return token_file.read_text().strip() if token_file.is_file() else None


def request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    token = _token(args)
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(method, f"{galley_url(args).rstrip('/')}{path}", headers=headers, timeout=30.0,
                                 **kwargs)
    except httpx.HTTPError as exc:
        raise GalleyUnreachable(f"cannot reach galley at {galley_url(args)}: {exc} (is the mesh up?); "
                                f"{contexts.explain(args)}") from exc
    if response.status_code in (401, 403):
        raise GalleyUnreachable(f"galley at {galley_url(args)} refused the request ({response.status_code}: "
                                f"{_detail(response)}); {contexts.explain(args)}")
    if response.status_code == 503:
        raise GalleyUnreachable(f"galley at {galley_url(args)} is up but could not store the change: "
                                f"{_detail(response)}")
    return response


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text.strip()
